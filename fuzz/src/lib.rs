//! Property checks for the chat-proto fuzz targets, kept out of the targets so they can
//! also run as ordinary tests (`cargo test` in `fuzz/`, on stable, no fuzzer) against
//! the committed seeds and any crash artifacts.
//!
//! # Layout
//!
//! * [`split`] — the frame splitter: [`chat_proto::frame::Frames`], [`FrameBuf`]
//!   (`chat_proto::frame::FrameBuf`) and the server's `take_bytes` pattern must agree
//!   on arbitrary bytes fed in arbitrary chunkings, and account for every byte.
//! * [`requests`] — `RequestDecoder` (detecting, JSON, protobuf) on arbitrary frames:
//!   never panics, format detection is consistent, and whatever decodes re-encodes and
//!   decodes to the same request (in its own format and, where it fits, the other).
//! * [`responses`] — the same for `ResponseDecoder` in both formats.
//! * [`seeds`] — small valid streams to start the fuzzers from.
//!
//! Every check panics (via `assert!`) when a property fails: to libFuzzer a panic is a
//! crash, and the input is saved under `fuzz/artifacts/<target>/`.
//!
//! [`FrameBuf`]: chat_proto::frame::FrameBuf

pub mod requests;
pub mod responses;
pub mod seeds;
pub mod split;

use chat_proto::frame::Frames;

/// The complete frame payloads at the front of `data`; trailing bytes that do not make
/// a whole frame are ignored.
pub fn frames_of(data: &[u8]) -> Vec<&[u8]> {
    Frames::new(data).collect()
}

/// Runs the checks of the target called `target` on one input.
///
/// # Panics
///
/// If a property fails, or if `target` is not one of [`seeds::TARGETS`].
pub fn check(target: &str, data: &[u8]) {
    match target {
        "frames" => split::check(data),
        "request_decoder" => requests::check(data),
        "response_decoder" => responses::check(data),
        _ => panic!("no fuzz target called {target}"),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    /// Every committed seed and every saved crash artifact passes its target's checks.
    #[test]
    fn replay() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut replayed = 0;
        for target in crate::seeds::TARGETS {
            for dir in ["seeds", "artifacts"] {
                let Ok(entries) = fs::read_dir(root.join(dir).join(target)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("readable directory").path();
                    let data = fs::read(&path).expect("readable file");
                    eprintln!("replaying {}", path.display());
                    crate::check(target, &data);
                    replayed += 1;
                }
            }
        }
        assert!(
            replayed > 0,
            "no seeds found: run `cargo run --example make_seeds`"
        );
    }

    /// The generated seeds pass too (whether or not they were written out).
    #[test]
    fn generated_seeds_pass() {
        for (target, _, data) in crate::seeds::all() {
            crate::check(target, &data);
        }
    }
}
