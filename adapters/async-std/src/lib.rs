//! Switchyard driver over async-std (skeleton until the adapters issue).
