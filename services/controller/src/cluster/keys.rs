//! The key layout under the store's prefix (default `/crank`):
//!
//! - `<prefix>/v1/workers/<worker_id>` → a
//!   [`ReplicatedWorker`](crank_proto::wire::ReplicatedWorker) as JSON;
//! - `<prefix>/v1/controllers/<controller_id>` → a
//!   [`ControllerAnnouncement`](crank_proto::wire::ControllerAnnouncement),
//!   attached to the controller's session lease.

/// The keys of one store prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    root: String,
}

/// What a key under the prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<'a> {
    Worker(&'a str),
    Controller(&'a str),
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            root: format!("{}/v1/", prefix.trim_end_matches('/')),
        }
    }

    /// Everything crank keeps.
    pub fn all(&self) -> &str {
        &self.root
    }

    pub fn workers(&self) -> String {
        format!("{}workers/", self.root)
    }

    pub fn worker(&self, worker_id: &str) -> String {
        format!("{}workers/{worker_id}", self.root)
    }

    pub fn controller(&self, controller_id: &str) -> String {
        format!("{}controllers/{controller_id}", self.root)
    }

    /// What `key` names, if it is one of crank's.
    pub fn parse<'a>(&self, key: &'a str) -> Option<Key<'a>> {
        let rest = key.strip_prefix(self.root.as_str())?;
        if let Some(id) = rest.strip_prefix("workers/") {
            return Some(Key::Worker(id));
        }
        rest.strip_prefix("controllers/").map(Key::Controller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let keys = Keys::new("/crank/");
        assert_eq!(keys.worker("w1"), "/crank/v1/workers/w1");
        assert_eq!(keys.parse("/crank/v1/workers/w1"), Some(Key::Worker("w1")));
        assert_eq!(
            keys.parse(&keys.controller("c1")),
            Some(Key::Controller("c1"))
        );
        assert_eq!(keys.parse("/other/v1/workers/w1"), None);
    }
}
