//! Writes the seed corpus to `fuzz/seeds/<target>/<name>` (see `chat_proto_fuzz::seeds`).
//!
//! Run in `fuzz/`: `cargo run --example make_seeds`. Existing files of the same name are
//! overwritten; nothing else is touched.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut total = 0;
    for (target, name, bytes) in chat_proto_fuzz::seeds::all() {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), &bytes)?;
        total += bytes.len();
        println!("{target}/{name}: {} bytes", bytes.len());
    }
    println!("{total} bytes in all");
    Ok(())
}
