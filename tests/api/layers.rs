//! The top-level modules of `src/` form layers: a module may use the ones
//! below it, never one above. This reads every `crate::<module>` the code
//! names (tests and doc comments aside) and fails on an edge that points
//! up, which also rules out every import cycle. `docs/decisions.md` says
//! why the layers are in this order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom first. `fuzz` is compiled for tests and fuzzing only and may use
/// anything.
const LAYERS: &[&str] = &[
    "domain",
    "config",
    "observability",
    "infra",
    "store",
    "auth",
    "webhooks",
    "service",
    "http",
    "ws",
    "app",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/http/rooms.rs`
/// is `http`); `None` for `lib.rs` and `main.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?;
    let name = first.as_os_str().to_str()?.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The top-level modules a file names as `crate::<module>`, ignoring
/// comments and everything from its first `#[cfg(test)]` on.
fn modules_named(code: &str) -> BTreeSet<String> {
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    let mut named = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or_default();
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            named.insert(rest[..end].to_owned());
        }
        // `use crate::{a::X, b::Y};` on one line.
        if let Some(group) = line.split("crate::{").nth(1) {
            for part in group.split(',') {
                let name = part.trim().split("::").next().unwrap_or_default();
                named.insert(name.trim_matches(|c| c == '}' || c == ';').to_owned());
            }
        }
    }
    named
}

#[test]
fn no_top_level_module_of_src_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut upward = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        if module == "fuzz" {
            continue;
        }
        let Some(own) = rank(&module) else {
            upward.push(format!(
                "{}: top-level module `{module}` has no layer; add it to LAYERS",
                file.display()
            ));
            continue;
        };
        let code = std::fs::read_to_string(file).unwrap();
        for used in modules_named(&code) {
            if let Some(theirs) = rank(&used)
                && theirs > own
            {
                upward.push(format!(
                    "{}: `{module}` uses `{used}`, a layer above it",
                    file.display()
                ));
            }
        }
    }
    assert!(upward.is_empty(), "layering broken:\n{}", upward.join("\n"));
}

#[test]
fn the_layer_check_sees_a_use_that_points_up() {
    let code = "use crate::app::AppState;\nuse crate::{domain::Code, http::error::ApiError};\n// crate::ws in a comment\n";
    let named = modules_named(code);
    assert!(named.contains("app") && named.contains("domain") && named.contains("http"));
    assert!(!named.contains("ws"));
}

#[test]
fn the_layout_maps_in_lib_rs_and_the_readme_name_every_top_level_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut tree: Vec<String> = std::fs::read_dir(root.join("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| {
            let dir = !name.ends_with(".rs");
            let module = name.trim_end_matches(".rs").to_owned();
            (!["lib", "main", "fuzz"].contains(&module.as_str()))
                .then(|| if dir { format!("{module}/") } else { module })
        })
        .collect();
    tree.sort();
    for module in &tree {
        let row = format!("| `{module}` |");
        assert!(
            lib.contains(&format!("//! {row}")),
            "src/lib.rs lacks {row}"
        );
        assert!(readme.contains(&row), "README.md lacks {row}");
        let name = module.trim_end_matches('/');
        assert!(LAYERS.contains(&name), "{name} has no layer in LAYERS");
    }
    assert_eq!(
        tree.len(),
        LAYERS.len(),
        "LAYERS names a module not in src/"
    );
}
