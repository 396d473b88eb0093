//! A small map keyed by member id: a sorted vector, faster than a hash map for the
//! handful of members a group has, and deterministic in its iteration order.

use super::MemberId;

/// A map from member id to `V`, iterated in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberMap<V> {
    entries: Vec<(MemberId, V)>,
}

impl<V> MemberMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        MemberMap {
            entries: Vec::new(),
        }
    }

    fn find(&self, id: MemberId) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&id, |(k, _)| *k)
    }

    /// The value for `id`.
    pub fn get(&self, id: MemberId) -> Option<&V> {
        self.find(id).ok().map(|i| &self.entries[i].1)
    }

    /// The value for `id`, mutably.
    pub fn get_mut(&mut self, id: MemberId) -> Option<&mut V> {
        match self.find(id) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    /// Sets the value for `id`, returning the old one.
    pub fn insert(&mut self, id: MemberId, value: V) -> Option<V> {
        match self.find(id) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (id, value));
                None
            }
        }
    }

    /// Removes `id`.
    pub fn remove(&mut self, id: MemberId) -> Option<V> {
        match self.find(id) {
            Ok(i) => Some(self.entries.remove(i).1),
            Err(_) => None,
        }
    }

    /// Whether `id` has a value.
    pub fn contains(&self, id: MemberId) -> bool {
        self.find(id).is_ok()
    }

    /// The entries, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (MemberId, &V)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// The ids, in order.
    pub fn keys(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.entries.iter().map(|(k, _)| *k)
    }

    /// Consumes the map into its entries, in id order.
    pub fn into_entries(self) -> Vec<(MemberId, V)> {
        self.entries
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<V: Default> MemberMap<V> {
    /// The value for `id`, inserted as `V::default()` when absent.
    pub fn entry(&mut self, id: MemberId) -> &mut V {
        let i = match self.find(id) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (id, V::default()));
                i
            }
        };
        &mut self.entries[i].1
    }
}
