#!/usr/bin/env bash
# Restores a backup made by scripts/ops/backup.sh into PostgreSQL.
#
#   scripts/ops/restore.sh [OPTIONS] BACKUP DATABASE_URL
#
# BACKUP is a .dump (plain) or .dump.enc (encrypted) file. When its .sha256
# file lies beside it, the checksum is verified first. Two ways to restore:
#
#   scripts/ops/restore.sh BACKUP postgres://.../parley
#       into the existing, empty database the URL names;
#   scripts/ops/restore.sh --create BACKUP postgres://.../postgres
#       re-creates the backed-up database under its original name; the URL
#       names any other database of the server to connect to (after losing
#       the database, as in a disaster).
#
# Stop parley (or keep it from writing) while restoring. pg_restore stops at
# the first error and the exit status says whether it worked.
#
# Options:
#   --create          as above
#   --key-file FILE   passphrase of an encrypted backup (or set
#                     $PARLEY_BACKUP_KEY_FILE, or the passphrase itself in
#                     $PARLEY_BACKUP_KEY); never passed on a command line
#   --no-owner        do not restore object ownership (restoring into a
#                     server whose roles differ from the original's)
#   -h, --help        this text
set -euo pipefail

# Log lines go to stderr: stdout is for results (the backup's path).
LOG_FD=2
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

readonly PBKDF2_ITER=200000

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

create=false
key_file=${PARLEY_BACKUP_KEY_FILE:-}
pg_opts=()
args=()
while (($# > 0)); do
    case $1 in
        --create) create=true; shift ;;
        --key-file) key_file=${2:?--key-file needs a file}; shift 2 ;;
        --no-owner) pg_opts+=(--no-owner); shift ;;
        -h | --help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) args+=("$1"); shift ;;
    esac
done
((${#args[@]} == 2)) || die "expected BACKUP and DATABASE_URL (see --help)"
backup=${args[0]}
url=${args[1]}

[[ -f "$backup" && -r "$backup" ]] || die "backup '$backup' is missing or unreadable"
command -v pg_restore >/dev/null || die "pg_restore not found: install postgresql-client"

if [[ -f "$backup.sha256" ]]; then
    (cd "$(dirname "$backup")" && sha256sum --quiet -c "$(basename "$backup").sha256") ||
        die "checksum mismatch: $backup is damaged or not the file that was backed up"
    log "checksum ok"
else
    log "no $backup.sha256: checksum not verified"
fi

decrypt=()
if [[ "$backup" == *.enc ]]; then
    if [[ -n "$key_file" ]]; then
        [[ -r "$key_file" && -s "$key_file" ]] || die "key file '$key_file' is missing, unreadable or empty"
        decrypt=(-pass "file:$key_file")
    elif [[ -n "${PARLEY_BACKUP_KEY:-}" ]]; then
        decrypt=(-pass env:PARLEY_BACKUP_KEY)
    else
        die "$backup is encrypted: give --key-file, \$PARLEY_BACKUP_KEY_FILE or \$PARLEY_BACKUP_KEY"
    fi
    command -v openssl >/dev/null || die "openssl not found, and the backup is encrypted"
fi

restore=(pg_restore -w --exit-on-error "${pg_opts[@]}")
if $create; then
    restore+=(--create -d "$url")
else
    # One transaction: a failed restore leaves the database as it was.
    restore+=(--single-transaction -d "$url")
fi

if ((${#decrypt[@]} > 0)); then
    openssl enc -d -aes-256-cbc -pbkdf2 -iter "$PBKDF2_ITER" "${decrypt[@]}" -in "$backup" |
        "${restore[@]}"
else
    "${restore[@]}" "$backup"
fi
log "restored $backup"
