//! What a plugin parsed from its configuration, kept by configuration id: the host hands a
//! call only the id of its configuration, and the documents are fetched and parsed once per
//! id (per instance), not on every call.

use std::cell::RefCell;
use std::rc::Rc;

/// Most configurations kept per instance; the least recently used goes first.
pub const KEPT_CONFIGURATIONS: usize = 16;

/// A parsed configuration, or the problems that kept it from parsing.
pub type Parsed<C> = Rc<Result<C, Vec<String>>>;

/// Parsed configurations by id, most recently used first.
pub struct ConfigCache<C> {
    entries: RefCell<Vec<(u64, Parsed<C>)>>,
}

impl<C> Default for ConfigCache<C> {
    fn default() -> Self {
        Self {
            entries: RefCell::new(Vec::new()),
        }
    }
}

impl<C> ConfigCache<C> {
    /// The configuration `id`: kept, or fetched and parsed now (a failed parse is kept too,
    /// so a broken configuration is not parsed again on every call).
    pub fn get(
        &self,
        id: u64,
        fetch: impl FnOnce() -> Vec<String>,
        parse: impl FnOnce(&[String]) -> Result<C, Vec<String>>,
    ) -> Parsed<C> {
        let mut entries = self.entries.borrow_mut();
        if let Some(at) = entries.iter().position(|(kept, _)| *kept == id) {
            let entry = entries.remove(at);
            let parsed = Rc::clone(&entry.1);
            entries.insert(0, entry);
            return parsed;
        }
        let parsed = Rc::new(parse(&fetch()));
        entries.insert(0, (id, Rc::clone(&parsed)));
        entries.truncate(KEPT_CONFIGURATIONS);
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_configuration_is_parsed_once_per_id_and_the_oldest_goes_first() {
        let cache: ConfigCache<u64> = ConfigCache::default();
        let parses = Cell::new(0);
        let get = |id: u64| {
            cache.get(id, Vec::new, |_| {
                parses.set(parses.get() + 1);
                Ok(id)
            })
        };
        assert_eq!(*get(1), Ok(1));
        assert_eq!(*get(1), Ok(1));
        assert_eq!(parses.get(), 1, "kept by id");
        for id in 2..=KEPT_CONFIGURATIONS as u64 {
            get(id);
        }
        get(1); // most recently used again
        get(100); // evicts 2, the least recently used
        let before = parses.get();
        get(1);
        assert_eq!(parses.get(), before, "1 was kept");
        get(2);
        assert_eq!(parses.get(), before + 1, "2 was evicted");
    }
}
