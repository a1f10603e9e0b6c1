//! Shared helpers for twig end-to-end tests (finding real servers, free ports, deadlines).

pub mod connect_proxy;
pub mod harness;
pub mod hostile;
pub mod hub;
pub mod jwt;
pub mod leaf_raw;
pub mod link_emu;
pub mod mosquitto;
pub mod mqtt_raw;
pub mod nats_raw;
pub mod nats_server;
pub mod pki;
pub mod recorder;
pub mod stream_file;
