//! Name normalisation (`cpreg_proto::names`), which every comparison of names goes through.
//!
//! Properties: normalising is idempotent; the result is lower-case ASCII letters and digits in
//! tokens separated by single spaces; `normalise`, `tokens` and `joined` agree; for ASCII input
//! case does not matter.

#![no_main]

use cpreg_proto::names::{joined, normalise, tokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let normal = normalise(name);
    assert_eq!(normalise(&normal), normal, "not idempotent for {name:?}");
    let parts = tokens(name);
    assert_eq!(parts.join(" "), normal);
    assert_eq!(joined(name), parts.concat());
    for token in &parts {
        assert!(!token.is_empty());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "token {token:?} of {name:?}"
        );
    }
    if name.is_ascii() {
        assert_eq!(normalise(&name.to_ascii_uppercase()), normal);
    }
});
