//! Finding a model that is already in the Hugging Face cache:
//! `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, holding
//! `models--ORG--NAME/snapshots/REV/` with `refs/main` naming the revision.

use std::path::{Path, PathBuf};

/// The hub cache folder the `huggingface_hub` library would use.
pub fn hub_cache_root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(home).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// The snapshot folder of `repo` ("ORG/NAME") in `root`: the revision `refs/main` names, else
/// the most recently modified snapshot. None when the model is not in the cache.
pub fn snapshot_in(root: &Path, repo: &str) -> Option<PathBuf> {
    let (org, name) = repo.split_once('/')?;
    if org.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    let model = root.join(format!("models--{org}--{name}"));
    let snapshots = model.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(model.join("refs/main")) {
        let dir = snapshots.join(rev.trim());
        if dir.is_dir() {
            return Some(dir);
        }
    }
    std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_main_revision_then_any_snapshot() {
        let root = std::env::temp_dir().join(format!("hearth-hf-cache-{}", std::process::id()));
        let model = root.join("models--Qwen--Qwen2.5-Coder-7B-Instruct-AWQ");
        std::fs::create_dir_all(model.join("snapshots/abc123")).unwrap();
        std::fs::create_dir_all(model.join("snapshots/old999")).unwrap();
        std::fs::create_dir_all(model.join("refs")).unwrap();
        std::fs::write(model.join("refs/main"), "abc123\n").unwrap();
        assert_eq!(snapshot_in(&root, "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"), Some(model.join("snapshots/abc123")));
        std::fs::remove_file(model.join("refs/main")).unwrap();
        assert!(snapshot_in(&root, "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ").is_some(), "any snapshot without refs/main");
        assert_eq!(snapshot_in(&root, "Qwen/Other"), None);
        assert_eq!(snapshot_in(&root, "no-slash"), None);
        let _ = std::fs::remove_dir_all(root);
    }
}
