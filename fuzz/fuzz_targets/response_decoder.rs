//! Fuzz target `response_decoder`: the checks live in `chat_proto_fuzz::responses` (see
//! its docs for the input layout and the properties); a failed property panics, which
//! libFuzzer reports as a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chat_proto_fuzz::responses::check(data));
