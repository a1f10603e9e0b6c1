//! rumqttc's MQTT 3.1.1 reader on arbitrary client bytes, as a server would drive it: read
//! packets until the buffer runs dry or an error; every packet read must encode again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rumqttc::mqttbytes::{v4::Packet, Error};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    for _ in 0..64 {
        match Packet::read(&mut buf, 1 << 16) {
            Ok(packet) => {
                let mut out = BytesMut::new();
                let _ = packet.write(&mut out, 1 << 20);
            }
            Err(Error::InsufficientBytes(_)) | Err(_) => break,
        }
    }
});
