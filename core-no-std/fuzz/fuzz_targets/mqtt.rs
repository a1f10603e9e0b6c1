//! MQTT mapping: never panic; a topic that maps comes back unchanged; a filter's subject
//! is a valid NATS subscription and delivers the topics it matches in MQTT terms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twig_core::{mqtt, subject};

fuzz_target!(|data: &[u8]| {
    let mut subj = vec![0u8; mqtt::max_subject_len(data.len())];
    if let Ok(n) = mqtt::publish_topic_to_subject(data, &mut subj) {
        let mut topic = vec![0u8; mqtt::max_topic_len(n)];
        let m = mqtt::subject_to_topic(&subj[..n], &mut topic).expect("mapped subject maps back");
        assert_eq!(&topic[..m], data, "round trip of {data:?}");
    }
    let mut out = vec![0u8; mqtt::max_subject_len(data.len())];
    if let Ok(f) = mqtt::filter_to_subjects(data, &mut out) {
        assert!(subject::validate(f.subject).is_ok(), "filter {data:?} -> {:?}", f.subject);
        if let Some(p) = f.parent {
            assert!(subject::validate(p).is_ok());
        }
    }
    // Arbitrary subjects (also from NATS publishers) must map or fail cleanly.
    let mut topic = vec![0u8; mqtt::max_topic_len(data.len())];
    let _ = mqtt::subject_to_topic(data, &mut topic);
    // Small buffers give BufferTooSmall, never a panic.
    let mut tiny = [0u8; 3];
    let _ = mqtt::publish_topic_to_subject(data, &mut tiny);
    let _ = mqtt::subject_to_topic(data, &mut tiny);
});
