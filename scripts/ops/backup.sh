#!/usr/bin/env bash
# Backs up parley's PostgreSQL database with pg_dump in custom format,
# optionally encrypted with AES-256, and prunes old backups.
#
#   scripts/ops/backup.sh [OPTIONS] [DATABASE_URL]
#
# DATABASE_URL defaults to $DATABASE_URL. Writes
#   DIR/parley-<database>-<UTC time>.dump          (plain), or
#   DIR/parley-<database>-<UTC time>.dump.enc      (encrypted)
# beside a .sha256 file, and prints the backup's path on stdout. A backup is
# written under a temporary name and renamed when complete, so a failed or
# interrupted run never leaves something that looks like a backup.
#
# Options:
#   --dir DIR         where backups go (default $PARLEY_BACKUP_DIR or ./backups)
#   --keep N          after backing up, keep only the N newest backups of this
#                     database in DIR (default $PARLEY_BACKUP_KEEP or 0 = all)
#   --keep-days D     after backing up, delete this database's backups older
#                     than D days (default $PARLEY_BACKUP_KEEP_DAYS or 0 = none)
#   --key-file FILE   encrypt with the passphrase in FILE (same as setting
#                     $PARLEY_BACKUP_KEY_FILE)
#   -h, --help        this text
#
# Encryption: when a key is configured (--key-file, $PARLEY_BACKUP_KEY_FILE,
# or the passphrase itself in $PARLEY_BACKUP_KEY) the dump is piped through
#   openssl enc -aes-256-cbc -pbkdf2 -iter 200000 -salt
# and the key is handed to openssl as file:/env:, never on a command line
# (where `ps` would show it). Restore with scripts/ops/restore.sh and the same
# key. See docs/backups.md.
set -euo pipefail

# Log lines go to stderr: stdout is for results (the backup's path).
LOG_FD=2
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

readonly PBKDF2_ITER=200000

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
is_count() { [[ "$1" =~ ^[0-9]+$ ]]; }

dir=${PARLEY_BACKUP_DIR:-./backups}
keep=${PARLEY_BACKUP_KEEP:-0}
keep_days=${PARLEY_BACKUP_KEEP_DAYS:-0}
key_file=${PARLEY_BACKUP_KEY_FILE:-}
url=${DATABASE_URL:-}

while (($# > 0)); do
    case $1 in
        --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
        --keep) keep=${2:?--keep needs a number}; shift 2 ;;
        --keep-days) keep_days=${2:?--keep-days needs a number}; shift 2 ;;
        --key-file) key_file=${2:?--key-file needs a file}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) url=$1; shift ;;
    esac
done

[[ -n "$url" ]] || die "no database: pass a DATABASE_URL or set \$DATABASE_URL (see --help)"
is_count "$keep" || die "--keep must be a whole number, got '$keep'"
is_count "$keep_days" || die "--keep-days must be a whole number, got '$keep_days'"
command -v pg_dump >/dev/null || die "pg_dump not found: install postgresql-client (same major version as the server or newer)"

encrypt=()
if [[ -n "$key_file" ]]; then
    [[ -r "$key_file" && -s "$key_file" ]] || die "key file '$key_file' is missing, unreadable or empty"
    encrypt=(-pass "file:$key_file")
elif [[ -n "${PARLEY_BACKUP_KEY:-}" ]]; then
    encrypt=(-pass env:PARLEY_BACKUP_KEY)
fi
if ((${#encrypt[@]} > 0)); then
    command -v openssl >/dev/null || die "openssl not found, and a key is configured"
fi

# The database's own name, so backups of several databases can share DIR.
db=$(psql "$url" -w -X -q -A -t -c 'SELECT current_database()') ||
    die "cannot connect to the database (check the URL and that the server answers)"
mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%S.%3NZ)
name="parley-$db-$stamp.dump"
((${#encrypt[@]} > 0)) && name+=.enc
final="$dir/$name"
[[ ! -e "$final" ]] || die "$final already exists (two backups in the same millisecond?)"
tmp="$final.partial"
trap 'rm -f "$tmp"' EXIT

# Backups can hold every message ever sent: readable by the owner only.
umask 077
if ((${#encrypt[@]} > 0)); then
    pg_dump -Fc -w -d "$url" | openssl enc -aes-256-cbc -pbkdf2 -iter "$PBKDF2_ITER" -salt "${encrypt[@]}" -out "$tmp"
else
    pg_dump -Fc -w -d "$url" -f "$tmp"
fi
mv "$tmp" "$final"
(cd "$dir" && sha256sum "$name" >"$name.sha256")
log "wrote $final ($(du -h "$final" | cut -f1))"

# Retention applies to this database's finished backups only; the one just
# written is never removed.
mapfile -t backups < <(find "$dir" -maxdepth 1 -type f \
    \( -name "parley-$db-*.dump" -o -name "parley-$db-*.dump.enc" \) -printf '%f\n' | sort -r)
remove=()
if ((keep > 0 && ${#backups[@]} > keep)); then
    remove+=("${backups[@]:keep}")
fi
if ((keep_days > 0)); then
    while IFS= read -r old; do
        [[ -n "$old" && "$old" != "$name" ]] && remove+=("$old")
    done < <(find "$dir" -maxdepth 1 -type f -mtime "+$((keep_days - 1))" \
        \( -name "parley-$db-*.dump" -o -name "parley-$db-*.dump.enc" \) -printf '%f\n')
fi
for old in "${remove[@]}"; do
    [[ "$old" == "$name" ]] && continue
    rm -f "$dir/$old" "$dir/$old.sha256"
    log "retention: removed $dir/$old"
done

printf '%s\n' "$final"
