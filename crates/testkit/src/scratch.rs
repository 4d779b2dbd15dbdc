//! A named folder under the temp dir that is removed when the test is done with it, also when
//! the test panics, so that a failing run does not leave gigabytes of model files behind.

use std::path::{Path, PathBuf};

/// `$TMPDIR/hearth-{name}-{pid}`, emptied at creation and removed on drop.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// The folder's path is reserved, not created: writers such as `gguf_to_hf_dir` create it.
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("hearth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::ScratchDir;

    #[test]
    fn the_folder_goes_away_on_drop_and_on_panic() {
        let kept = ScratchDir::new("scratch-test");
        std::fs::create_dir_all(kept.path()).unwrap();
        std::fs::write(kept.path().join("f"), b"x").unwrap();
        let path = kept.path().to_path_buf();
        drop(kept);
        assert!(!path.exists());

        let path = std::panic::catch_unwind(|| {
            let dir = ScratchDir::new("scratch-panic");
            std::fs::create_dir_all(dir.path()).unwrap();
            if dir.path().exists() {
                panic!("{}", dir.path().display());
            }
        })
        .unwrap_err();
        let path = path.downcast_ref::<String>().unwrap();
        assert!(!std::path::Path::new(path).exists());
    }
}
