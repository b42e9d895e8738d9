//! User header rules for the upstream request, with variables (STUB: being written).

/// What a rule does to the upstream request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderAction {
    /// Replace every field of this name with one (none if the value evaluates empty).
    Set,
    /// Append one more field of this name (skipped if the value evaluates empty).
    Add,
    /// Remove every field of this name.
    Remove,
}

/// One user rule, like nginx's `proxy_set_header`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    /// What to do.
    pub action: HeaderAction,
    /// The field name.
    pub name: String,
    /// The value template (`$remote_addr`, `$host`, `$http_x_foo`, ...).
    pub value: String,
}
