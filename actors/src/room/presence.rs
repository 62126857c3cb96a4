//! Who is online in a room, across instances.
//!
//! A user is online if any of their sessions, on any instance, subscribes to
//! the room. This instance knows its own sessions exactly; it learns the
//! others' from presence events on the bus (fast) and from periodic
//! snapshots of the shared presence registry (which expires the users of an
//! instance that died without saying goodbye). Only flips of the combined
//! state are announced to local subscribers.

use crate::ids::UserId;
use std::collections::{BTreeSet, HashMap};

#[derive(Default)]
pub struct Presence {
    /// Local sessions per user.
    local: HashMap<UserId, usize>,
    /// Other instances where each user has a session.
    remote: HashMap<UserId, BTreeSet<String>>,
}

/// A change of a user's combined state, to announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flip {
    pub user: UserId,
    pub online: bool,
}

impl Presence {
    pub fn is_online(&self, user: UserId) -> bool {
        self.local.contains_key(&user) || self.remote.get(&user).is_some_and(|i| !i.is_empty())
    }

    /// A local session joined. Returns `(first local session, flip)`.
    pub fn join(&mut self, user: UserId) -> (bool, Option<Flip>) {
        let was = self.is_online(user);
        let count = self.local.entry(user).or_default();
        *count += 1;
        let flip = (!was).then_some(Flip { user, online: true });
        (*count == 1, flip)
    }

    /// A local session left. Returns `(last local session, flip)`.
    pub fn leave(&mut self, user: UserId) -> (bool, Option<Flip>) {
        let Some(count) = self.local.get_mut(&user) else {
            return (false, None);
        };
        *count -= 1;
        if *count > 0 {
            return (false, None);
        }
        self.local.remove(&user);
        let flip = (!self.is_online(user)).then_some(Flip {
            user,
            online: false,
        });
        (true, flip)
    }

    /// Another instance reported a user joining (first session there) or
    /// leaving (last session there).
    pub fn remote_event(&mut self, instance: &str, user: UserId, online: bool) -> Option<Flip> {
        let was = self.is_online(user);
        let instances = self.remote.entry(user).or_default();
        if online {
            instances.insert(instance.to_owned());
        } else {
            instances.remove(instance);
            if instances.is_empty() {
                self.remote.remove(&user);
            }
        }
        let now = self.is_online(user);
        (was != now).then_some(Flip { user, online: now })
    }

    /// Replaces what is known of other instances with a registry snapshot.
    pub fn replace_remote(&mut self, snapshot: Vec<(String, UserId)>) -> Vec<Flip> {
        let mut fresh: HashMap<UserId, BTreeSet<String>> = HashMap::new();
        for (instance, user) in snapshot {
            fresh.entry(user).or_default().insert(instance);
        }
        let touched: BTreeSet<UserId> = self.remote.keys().chain(fresh.keys()).copied().collect();
        let before: Vec<(UserId, bool)> =
            touched.iter().map(|u| (*u, self.is_online(*u))).collect();
        self.remote = fresh;
        before
            .into_iter()
            .filter_map(|(user, was)| {
                let now = self.is_online(user);
                (was != now).then_some(Flip { user, online: now })
            })
            .collect()
    }

    /// Every user online here or elsewhere.
    pub fn everyone(&self) -> BTreeSet<UserId> {
        self.local
            .keys()
            .chain(self.remote.keys())
            .copied()
            .collect()
    }

    /// Users with a local session, for the shared registry.
    pub fn local_users(&self) -> Vec<UserId> {
        self.local.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> UserId {
        UserId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn only_the_first_and_last_session_flip() {
        let mut p = Presence::default();
        let ada = user(1);
        assert_eq!(
            p.join(ada),
            (
                true,
                Some(Flip {
                    user: ada,
                    online: true
                })
            )
        );
        assert_eq!(p.join(ada), (false, None));
        assert_eq!(p.leave(ada), (false, None));
        assert_eq!(
            p.leave(ada),
            (
                true,
                Some(Flip {
                    user: ada,
                    online: false
                })
            )
        );
        assert_eq!(p.leave(ada), (false, None), "unknown leave is ignored");
    }

    #[test]
    fn a_user_online_elsewhere_stays_online_when_the_local_session_leaves() {
        let mut p = Presence::default();
        let ada = user(1);
        assert_eq!(
            p.remote_event("b", ada, true),
            Some(Flip {
                user: ada,
                online: true
            })
        );
        assert_eq!(p.join(ada), (true, None));
        assert_eq!(p.leave(ada), (true, None));
        assert_eq!(
            p.remote_event("b", ada, false),
            Some(Flip {
                user: ada,
                online: false
            })
        );
    }

    #[test]
    fn a_snapshot_expires_a_dead_instance() {
        let mut p = Presence::default();
        let (ada, bob) = (user(1), user(2));
        p.remote_event("dead", ada, true);
        p.remote_event("alive", bob, true);
        let flips = p.replace_remote(vec![("alive".into(), bob)]);
        assert_eq!(
            flips,
            vec![Flip {
                user: ada,
                online: false
            }]
        );
        assert_eq!(p.everyone(), BTreeSet::from([bob]));
    }
}
