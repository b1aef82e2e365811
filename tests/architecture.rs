//! ARCHITECTURE.md's codemap names every file under `src/`, and no file that is not there.

use std::collections::BTreeSet;
use std::path::Path;

fn files_under(dir: &Path, root: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, root, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src");
            found.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The paths of the codemap's tree: each name, under the folders that enclose it.
fn codemap(text: &str) -> BTreeSet<String> {
    let tree = text
        .split("## Codemap")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("a codemap tree");
    let mut folders: Vec<(usize, String)> = Vec::new();
    let mut listed = BTreeSet::new();
    for line in tree.lines().skip(2) {
        // The name begins after the tree's drawing characters; its depth is where.
        let Some(start) = line.find(|c: char| c.is_alphanumeric() || c == '_') else {
            continue;
        };
        let drawing = &line[..start];
        if !(drawing.ends_with("── ")) {
            continue;
        }
        let depth = drawing.chars().count();
        let name = line[start..].split_whitespace().next().unwrap_or_default();
        folders.retain(|(d, _)| *d < depth);
        let prefix: String = folders.iter().map(|(_, f)| f.as_str()).collect();
        if let Some(folder) = name.strip_suffix('/') {
            folders.push((depth, format!("{folder}/")));
        } else {
            listed.insert(format!("{prefix}{name}"));
        }
    }
    listed
}

#[test]
fn the_codemap_lists_exactly_the_files_of_src() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut actual = BTreeSet::new();
    files_under(&root.join("src"), &root.join("src"), &mut actual);
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    assert_eq!(codemap(&text), actual);
}
