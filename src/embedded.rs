//! Files of the source tree compiled into the binary (see `build.rs`): the C SDK, `lib/`, `templates/`.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
