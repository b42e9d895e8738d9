//! Switchyard driver over blocking (skeleton until the adapters issue).
