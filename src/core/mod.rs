//! The core every operation shares: the workspace model (layout, configuration, probes), the compile steps,
//! freshness, the step graph, the build lock and progress output. Operations (`check`, `generate`, `build`,
//! `clean`, `install`, `new`, `run`, `import`) take what they need from here and never from each other.

pub mod artifacts;
pub mod compile;
pub mod compile_db;
pub mod diagnostic;
pub mod fresh;
pub mod graph;
pub mod header;
pub mod lock;
pub mod manifest;
pub mod minimized_btf;
pub mod probe;
pub mod probe_flags;
pub mod progress;
pub mod selection;
pub mod trust;
pub mod workspace;
