//! Import cycles between the modules of a crate, read from its `use crate::` / `use super::` /
//! `use self::` lines (brace groups expanded; test modules skipped). A cycle is two modules
//! that need each other: the gate keeps the one-way layering ARCHITECTURE.md describes.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

type Module = Vec<String>;

/// The module a source file defines: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut m: Module = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    if matches!(m.last().map(String::as_str), Some("mod" | "main" | "lib")) {
        m.pop();
    }
    m
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// `a::{b, c::{d, e}}` as the paths `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &[String], out: &mut Vec<Module>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{').filter(|_| tree.ends_with('}')) else {
        let mut p = prefix.to_vec();
        p.extend(tree.split("::").map(str::trim).filter(|s| !s.is_empty()).map(String::from));
        out.push(p);
        return;
    };
    let mut p = prefix.to_vec();
    p.extend(tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(String::from));
    let (mut depth, mut start) = (0, open + 1);
    let body_end = tree.len() - 1;
    for (i, c) in tree.char_indices().take(body_end).skip(open + 1) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&tree[start..i], &p, out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !tree[start..body_end].trim().is_empty() {
        expand(&tree[start..body_end], &p, out);
    }
}

/// Every `use` path of a file's non-test code.
fn uses(text: &str) -> Vec<Module> {
    let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let code = code.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let boundary = rest[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        rest = &rest[i + 4..];
        let Some(end) = rest.find(';') else { break };
        if boundary {
            expand(&rest[..end], &[], &mut out);
        }
    }
    out
}

/// The module graph of the crate under `src` and one cycle through each strongly connected
/// group, as `a -> b -> a`.
pub(crate) fn find(src: &Path) -> std::io::Result<Vec<String>> {
    let mut list = Vec::new();
    files(src, &mut list)?;
    let mut text = BTreeMap::new();
    for f in &list {
        text.insert(module_of(src, f), std::fs::read_to_string(f)?);
    }
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, t) in &text {
        let e = edges.entry(m.clone()).or_default();
        for u in uses(t) {
            let (base, path): (Module, &[String]) = match u.first().map(String::as_str) {
                Some("crate") => (Vec::new(), &u[1..]),
                Some("super") => (m[..m.len().saturating_sub(1)].to_vec(), &u[1..]),
                Some("self") => (m.clone(), &u[1..]),
                _ => continue,
            };
            // The longest prefix of the path that names a module of the crate.
            let target = (0..=path.len())
                .rev()
                .map(|n| [base.clone(), path[..n].to_vec()].concat())
                .find(|c| text.contains_key(c));
            if let Some(t) = target.filter(|t| t != m) {
                e.insert(t);
            }
        }
    }
    let name = |m: &Module| if m.is_empty() { "crate".to_string() } else { m.join("::") };
    let mut cycles = Vec::new();
    let mut done: BTreeSet<Module> = BTreeSet::new();
    for start in edges.keys() {
        // Depth-first from each module: a path back to a module on the stack is a cycle.
        let mut stack: Vec<(Module, Vec<Module>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen: BTreeSet<Module> = BTreeSet::new();
        while let Some((m, path)) = stack.pop() {
            for t in edges.get(&m).into_iter().flatten() {
                if t == start {
                    let key: BTreeSet<Module> = path.iter().cloned().collect();
                    if key.iter().all(|k| !done.contains(k)) {
                        let mut names: Vec<String> = path.iter().map(name).collect();
                        names.push(name(start));
                        cycles.push(names.join(" -> "));
                        done.extend(key);
                    }
                } else if seen.insert(t.clone()) {
                    let mut p = path.clone();
                    p.push(t.clone());
                    stack.push((t.clone(), p));
                }
            }
        }
    }
    Ok(cycles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_use_trees() {
        let mut out = Vec::new();
        expand("crate::{a::{B, c}, d::E}", &[], &mut out);
        let out: Vec<String> = out.iter().map(|p| p.join("::")).collect();
        assert_eq!(out, ["crate::a::B", "crate::a::c", "crate::d::E"]);
    }

    #[test]
    fn finds_a_cycle_and_none_in_the_kernel_programs() {
        let dir = std::env::temp_dir().join(format!("xtask-cycles-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("p")).unwrap();
        std::fs::write(dir.join("main.rs"), "mod a;\nmod p;\n").unwrap();
        std::fs::write(dir.join("a.rs"), "use crate::p::b::X;\n").unwrap();
        std::fs::write(dir.join("p/mod.rs"), "pub mod b;\n").unwrap();
        std::fs::write(dir.join("p/b.rs"), "use crate::{\n    a::Y,\n};\n// use crate::nothing;\n").unwrap();
        let found = find(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("a") && found[0].contains("p::b"), "{found:?}");
        let ebpf = crate::util::workspace().join("tracer-ebpf/src");
        assert_eq!(find(&ebpf).unwrap(), Vec::<String>::new());
    }
}
