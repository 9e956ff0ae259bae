//! Fuzz target `request_decoder`: the checks live in `chat_proto_fuzz::requests` (see
//! its docs for the input layout and the properties); a failed property panics, which
//! libFuzzer reports as a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chat_proto_fuzz::requests::check(data));
