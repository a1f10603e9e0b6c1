//! The MQTT topic <-> NATS subject table that twig-core's tests also check against a real
//! nats-server (`twig_core::mqtt::testdata`), run here on the MCU.

use twig_core::mqtt::{self, testdata};
use twig_core::subject;

use crate::check::{Checks, Outcome, Show};
use crate::ensure;

/// Room for any mapping in the table (`max_subject_len` of its longest topic).
const OUT: usize = 128;

pub fn run() -> Outcome {
    let mut c = Checks::default();
    let mut out = [0u8; OUT];
    for case in testdata::PUBLISH {
        let topic = case.topic.as_bytes();
        let got = mqtt::publish_topic_to_subject(topic, &mut out).map(|n| &out[..n]);
        let want = case.subject.map(str::as_bytes);
        ensure!(c, got == want, "topic {}: {:?}", Show(topic), got.map(Show));
        if let Ok(subject) = want {
            // Back again: the round trip is exact for every topic that maps.
            let mut back = [0u8; OUT];
            let n = mqtt::subject_to_topic(subject, &mut back);
            ensure!(
                c,
                n.map(|n| &back[..n]) == Ok(topic),
                "round trip of {}",
                Show(topic)
            );
        }
    }
    for case in testdata::FILTERS {
        let filter = case.filter.as_bytes();
        let got = mqtt::filter_to_subjects(filter, &mut out);
        match (got, case.mapping) {
            (Ok(got), Ok(want)) => {
                ensure!(
                    c,
                    got.subject == want.subject.as_bytes(),
                    "filter {}",
                    Show(filter)
                );
                ensure!(
                    c,
                    got.parent == want.parent.map(str::as_bytes),
                    "parent of {}",
                    Show(filter)
                );
                ensure!(
                    c,
                    got.reserved == want.reserved,
                    "reserved of {}",
                    Show(filter)
                );
                let delivered = |s: &[u8]| {
                    (subject::matches(got.subject, s)
                        || got.parent.is_some_and(|p| subject::matches(p, s)))
                        && got.delivers(s)
                };
                for hit in case.hits {
                    ensure!(
                        c,
                        delivered(hit.as_bytes()),
                        "{} must get {}",
                        Show(filter),
                        hit
                    );
                }
                for miss in case.misses {
                    ensure!(
                        c,
                        !delivered(miss.as_bytes()),
                        "{} must not get {}",
                        Show(filter),
                        miss
                    );
                }
            }
            (Err(got), Err(want)) => ensure!(c, got == want, "filter {}: {:?}", Show(filter), got),
            (got, _) => ensure!(
                c,
                false,
                "filter {}: {:?}",
                Show(filter),
                got.map(|g| Show(g.subject))
            ),
        }
    }
    for case in testdata::SUBJECTS {
        let subject = case.subject.as_bytes();
        let got = mqtt::subject_to_topic(subject, &mut out).map(|n| &out[..n]);
        ensure!(
            c,
            got == case.topic.map(str::as_bytes),
            "subject {}: {:?}",
            Show(subject),
            got.map(Show)
        );
    }
    Ok(c.count)
}
