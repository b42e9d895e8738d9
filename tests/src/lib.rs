//! Cross-adapter conformance suite (skeleton until the adapters issue).
