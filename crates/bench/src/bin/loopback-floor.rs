//! `loopback-floor`: what one loopback `write` of a chat-sized message costs this
//! machine — the floor under a server's CPU per delivery.
//!
//! A writer thread writes `--messages` messages of `--bytes` bytes, one `write` each, to
//! a loopback TCP connection whose other end a reader thread drains; the writer's own
//! CPU time (user and system, `getrusage(RUSAGE_THREAD)`) divided by the writes is the
//! figure. On loopback the sender's `write` also runs the receiver's TCP stack, so this
//! is the kernel's share of one delivery when no batching helps. Run it pinned like the
//! server and the bench (`--writer-cpu=0 --reader-cpu=1`) for a per-core comparison; it
//! prints one JSON object.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;

/// Measures the CPU cost of one loopback write.
#[derive(Debug, Parser)]
#[command(name = "loopback-floor", version)]
struct Args {
    /// Messages to write (one `write` each).
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Bytes per message (a small chat frame is ~60).
    #[arg(long, default_value_t = 64)]
    bytes: usize,
    /// Pin the writer thread to this CPU (as the server is, in the pinned mode).
    #[arg(long)]
    writer_cpu: Option<usize>,
    /// Pin the reader thread to this CPU (as the bench is).
    #[arg(long)]
    reader_cpu: Option<usize>,
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write within it, and
    // sched_setaffinity(0, …) applies to the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// This thread's CPU time so far: (user, system).
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: rusage is plain integers (timevals and longs); all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes one rusage through the pointer, which points to
    // the live, exclusively borrowed `usage`; RUSAGE_THREAD is supported on Linux.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut writer = TcpStream::connect(listener.local_addr()?)?;
    writer.set_nodelay(true)?;
    let (mut reader, _) = listener.accept()?;
    let total = args.messages * args.bytes as u64;
    let reader_cpu = args.reader_cpu;
    let drain = std::thread::spawn(move || -> std::io::Result<u64> {
        if let Some(cpu) = reader_cpu {
            pin(cpu)?;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < total {
            match reader.read(&mut buf)? {
                0 => break,
                n => got += n as u64,
            }
        }
        Ok(got)
    });
    if let Some(cpu) = args.writer_cpu {
        pin(cpu)?;
    }
    let message = vec![b'x'; args.bytes];
    let (user0, sys0) = thread_cpu();
    let started = Instant::now();
    for _ in 0..args.messages {
        writer.write_all(&message)?;
    }
    let wall = started.elapsed();
    let (user1, sys1) = thread_cpu();
    drop(writer);
    let got = drain
        .join()
        .map_err(|_| std::io::Error::other("the reader panicked"))??;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / args.messages as f64;
    println!(
        "{{\"messages\": {}, \"bytes\": {}, \"received\": {got}, \"wall_s\": {:.3}, \
         \"user_us_per_write\": {:.3}, \"sys_us_per_write\": {:.3}, \"cpu_us_per_write\": {:.3}}}",
        args.messages,
        args.bytes,
        wall.as_secs_f64(),
        per(user1 - user0),
        per(sys1 - sys0),
        per((user1 - user0) + (sys1 - sys0)),
    );
    Ok(())
}
