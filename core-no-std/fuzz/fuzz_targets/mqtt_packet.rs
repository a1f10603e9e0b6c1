//! The MQTT packet codec on arbitrary bytes, for both protocol levels: no panic; a prefix of
//! the input never reads as a different packet (only "incomplete", or the same refusal once
//! the header is known); every packet read encodes to exactly `encoded_len` bytes that read
//! back as the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twig_core::mqtt::packet::{decode, Version};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, data)) = data.split_first() else { return };
    let v = if sel & 1 == 0 { Version::V4 } else { Version::V5 };
    let max = 64 + usize::from(sel >> 1) * 64;
    let mut rest = data;
    for _ in 0..16 {
        let whole = decode(rest, v, max);
        let cut = usize::from(sel).min(rest.len());
        match decode(&rest[..cut], v, max) {
            Ok(None) => {}
            Ok(Some(p)) => assert_eq!(Ok(Some(p)), whole, "a prefix read differently"),
            Err(e) => assert_eq!(whole.map(|_| ()), Err(e), "a prefix failed differently"),
        }
        let Ok(Some((packet, n))) = whole else { return };
        let mut out = vec![0u8; n + 16];
        let len = packet.encode_to_slice(v, &mut out).expect("a packet read encodes");
        assert_eq!(packet.encoded_len(v), Ok(len));
        let again = decode(&out[..len], v, usize::MAX).expect("re-reads").map(|(p, _)| p);
        assert_eq!(again, Some(packet));
        rest = &rest[n..];
    }
});
