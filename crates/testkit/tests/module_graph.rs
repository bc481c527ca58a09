//! No import circles between a crate's modules (issue 26): within each crate, the sibling
//! modules' `crate::`/`super::` references must point one way, so a module can be read and
//! changed knowing only what it imports.
//!
//! The graph is read from the source text: each file is a module (`a.rs` and `a/mod.rs` are
//! `a`, `a/b.rs` is `a::b`); a reference `crate::x::y` or `super::y` (outside comments, and
//! before the file's `#[cfg(test)]` part; files named `tests.rs` are test modules and left
//! out) is an edge to the longest module path it names. An
//! edge between two modules counts between their ancestors that are siblings (`a::b` using
//! `c::d` is `a` → `c`); a module using its ancestor or its own descendants is no edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `[a, b]`; `src/a/mod.rs` → `[a]`; `src/lib.rs`, `src/main.rs` → `[]`.
fn module_path(src: &Path, file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return Some(Vec::new());
    }
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    Some(parts)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The code of a file without comments and without its `#[cfg(test)]` tail (tests may use
/// anything in their crate).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The paths written after `prefix` (`crate::` or `super::`): `a::b::C`, and each member of a
/// brace group `{a::b, c}`, as identifier lists.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find(prefix) {
        let start = from + found;
        from = start + prefix.len();
        if code[..start].chars().next_back().is_some_and(is_ident_char) {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut end = group.len();
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        end = i;
                        break;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let mut depth = 0usize;
            let mut member = String::new();
            for c in group[..end].chars().chain(std::iter::once(',')) {
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    ',' if depth == 0 => {
                        out.push(idents(&member));
                        member.clear();
                        continue;
                    }
                    _ => {}
                }
                member.push(c);
            }
        } else {
            out.push(idents(rest));
        }
    }
    out
}

/// The leading `a::b::c` of `text` as identifiers.
fn idents(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        out.push(rest[..len].to_string());
        rest = &rest[len..];
        match rest.strip_prefix("::") {
            Some(next) => rest = next.trim_start(),
            None => break,
        }
    }
    out
}

/// Circles among sibling modules, each as its members, for one crate's `src/`.
fn circles(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules: BTreeMap<ModPath, String> = BTreeMap::new();
    for file in &files {
        if file.file_stem().is_some_and(|stem| stem == "tests") {
            continue;
        }
        if let (Some(path), Ok(text)) = (module_path(src, file), std::fs::read_to_string(file)) {
            modules.insert(path, code_of(&text));
        }
    }
    let known: BTreeSet<ModPath> = modules.keys().cloned().collect();
    let longest_module = |path: &[String]| -> ModPath {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| known.contains(p))
            .unwrap_or_default()
    };
    let mut edges: BTreeSet<(ModPath, ModPath)> = BTreeSet::new();
    for (from, code) in &modules {
        let mut targets = Vec::new();
        for path in paths_after(code, "crate::") {
            targets.push(longest_module(&path));
        }
        if let Some((_, parent)) = from.split_last() {
            for path in paths_after(code, "super::") {
                let mut full = parent.to_vec();
                full.extend(path);
                targets.push(longest_module(&full));
            }
        }
        for to in targets {
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // an ancestor, a descendant or itself
            }
            edges.insert((from[..=common].to_vec(), to[..=common].to_vec()));
        }
    }
    // Strongly connected components of more than one module (Tarjan would do; the graphs are
    // tiny, so reachability both ways is enough).
    let nodes: BTreeSet<ModPath> = edges
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let reaches = |from: &ModPath| -> BTreeSet<ModPath> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(node) = stack.pop() {
            for (a, b) in &edges {
                if a == &node && seen.insert(b.clone()) {
                    stack.push(b.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<ModPath, BTreeSet<ModPath>> =
        nodes.iter().map(|n| (n.clone(), reaches(n))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for node in &nodes {
        let members: Vec<String> = nodes
            .iter()
            .filter(|other| {
                *other == node || (reach[node].contains(*other) && reach[*other].contains(node))
            })
            .map(|m| m.join("::"))
            .collect();
        if members.len() > 1 {
            found.insert(members);
        }
    }
    found.into_iter().collect()
}

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn no_crate_has_an_import_circle() {
    let mut report = Vec::new();
    let mut crates = 0;
    for entry in std::fs::read_dir(crates_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let src = entry.path().join("src");
        if !src.is_dir() {
            continue;
        }
        crates += 1;
        for circle in circles(&src) {
            report.push(format!(
                "{}: {}",
                entry.file_name().to_string_lossy(),
                circle.join(" ↔ ")
            ));
        }
    }
    assert!(
        crates >= 9,
        "found {crates} crates under {}",
        crates_dir().display()
    );
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}

/// The checker finds a circle when there is one (and none in a one-way chain).
#[test]
fn a_circle_is_found() {
    let dir = std::env::temp_dir().join(format!("module-graph-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("outer")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod a;\npub mod b;\npub mod c;\npub mod outer;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a.rs"),
        "use crate::b::Thing;\n// crate::c is only a comment\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "pub struct Thing;\nuse crate::{c, outer::inner::X};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("c.rs"),
        "#[cfg(test)]\nmod tests { use crate::a; }\n",
    )
    .unwrap();
    std::fs::write(src.join("outer/mod.rs"), "pub mod inner;\npub mod other;\n").unwrap();
    std::fs::write(
        src.join("outer/inner.rs"),
        "pub struct X;\nuse super::other::Y;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("outer/other.rs"),
        "pub struct Y;\nfn f() { super::inner::X; }\n",
    )
    .unwrap();
    let found = circles(&src);
    assert_eq!(
        found,
        vec![vec!["outer::inner".to_string(), "outer::other".to_string()]]
    );
    std::fs::write(src.join("c.rs"), "use crate::a::Z;\n").unwrap();
    let found = circles(&src);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        found,
        vec![
            vec!["a".to_string(), "b".to_string(), "c".to_string()],
            vec!["outer::inner".to_string(), "outer::other".to_string()],
        ]
    );
}
