//! MQTT topic <-> NATS subject mapping (filled in by the mqtt work).
