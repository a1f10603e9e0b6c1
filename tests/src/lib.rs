//! Shared helpers for twig end-to-end tests (finding real servers, free ports, deadlines).

pub mod harness;
