//! Lexical path arithmetic, as make's `$(abspath)` does it: `.` and `..` resolved without the filesystem, and
//! one path written relative to another (`../../../common` from the workspace root).

use std::path::Path;

pub use crate::paths::{normalize, relative};

/// A path as the generated files write it: `/`-separated text.
pub fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn normalize_and_relative() {
        assert_eq!(
            normalize(Path::new("/t/e/src/mk//../../../../../common")),
            PathBuf::from("/common")
        );
        assert_eq!(
            normalize(Path::new("/t/src/mk/../lib/./x")),
            PathBuf::from("/t/src/lib/x")
        );
        assert_eq!(
            relative(
                Path::new("/g/src/common"),
                Path::new("/g/src/probes/extends/ebpf.probe")
            ),
            PathBuf::from("../../../common")
        );
        assert_eq!(
            relative(Path::new("/e/src/l7probe"), Path::new("/e/src/l7probe")),
            PathBuf::from(".")
        );
        assert_eq!(
            relative(
                Path::new("/e/src/lib/pystack"),
                Path::new("/e/src/stackprobe")
            ),
            PathBuf::from("../lib/pystack")
        );
    }
}
