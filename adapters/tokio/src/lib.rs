//! Switchyard driver over tokio (skeleton until the adapters issue).
