//! The view a member counts a majority of: the last one every member of the view
//! is known to have delivered.
//!
//! A member delivers a *process left* or a new epoch's *relayer changed* as soon as
//! its relay arrives, but until the rest of the group delivered it too, a later
//! synchronization may be led by a member that never saw it. Counting a majority
//! of the shrunk view at once would let a minority that delivered a removal
//! nobody else did (a relayer cut off from the majority orders up to a relay
//! window on its own) call itself a majority of what remains. So a removal or a
//! new epoch's view counts only once the stable watermark, what every member of
//! the view delivered, has passed it. Joiners count at once: a larger base only
//! makes a majority harder to reach.
//!
//! An epoch's view also counts once every member of it other than this one is
//! known to have it: its relayer, and members with evidence of their end (they
//! take part in no other synchronization).

use std::collections::{BTreeSet, VecDeque};

use crate::protocol::{MemberId, Seq};

/// A change to the view, waiting for the stable watermark to pass its position.
#[derive(Clone, Debug)]
enum Change {
    /// A *process left*.
    Left(MemberId),
    /// A new epoch began with this view, under this relayer.
    Installed(Vec<MemberId>, MemberId),
}

/// The view a majority is counted of, with the changes delivered but not yet known
/// to be delivered everywhere.
#[derive(Clone, Debug, Default)]
pub(super) struct CommittedView {
    members: Vec<MemberId>,
    /// Delivered changes, by position, oldest first.
    pending: VecDeque<(Seq, Change)>,
}

impl CommittedView {
    /// A view everyone has: the group's first, or the one a welcome hands over.
    pub(super) fn new(view: &[MemberId]) -> CommittedView {
        CommittedView {
            members: view.to_vec(),
            pending: VecDeque::new(),
        }
    }

    /// The members a majority is counted of.
    pub(super) fn members(&self) -> &[MemberId] {
        &self.members
    }

    /// `member`'s *process left* was delivered at `seq`.
    pub(super) fn on_left(&mut self, seq: Seq, member: MemberId) {
        self.pending.push_back((seq, Change::Left(member)));
    }

    /// `member` joined: it counts at once, also in every epoch view still pending.
    pub(super) fn on_joined(&mut self, member: MemberId) {
        if !self.members.contains(&member) {
            self.members.push(member);
        }
        for (_, change) in self.pending.iter_mut() {
            if let Change::Installed(view, _) = change {
                if !view.contains(&member) {
                    view.push(member);
                }
            }
        }
    }

    /// A new epoch's *relayer changed* was delivered at `seq`, with `view`, under
    /// `relayer`.
    pub(super) fn on_installed(&mut self, seq: Seq, view: &[MemberId], relayer: MemberId) {
        self.pending
            .push_back((seq, Change::Installed(view.to_vec(), relayer)));
    }

    /// Applies the changes up to the last epoch view known everywhere without the
    /// stable watermark (it replaces every change before it): one whose every
    /// member is `me`, its relayer or in `evidenced`.
    pub(super) fn settle(&mut self, me: MemberId, evidenced: &BTreeSet<MemberId>) {
        let known = self
            .pending
            .iter()
            .rev()
            .find_map(|(seq, change)| match change {
                Change::Installed(view, relayer)
                    if view
                        .iter()
                        .all(|m| *m == me || m == relayer || evidenced.contains(m)) =>
                {
                    Some(*seq)
                }
                _ => None,
            });
        if let Some(seq) = known {
            self.advance(seq);
        }
    }

    /// Every member of the view delivered up to `stable`: the changes up to there
    /// count.
    pub(super) fn advance(&mut self, stable: Seq) {
        while let Some((seq, _)) = self.pending.front() {
            if *seq > stable {
                break;
            }
            let Some((_, change)) = self.pending.pop_front() else {
                break;
            };
            match change {
                Change::Left(m) => self.members.retain(|x| *x != m),
                Change::Installed(view, _) => self.members = view,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_view_counts_once_each_member_is_known_to_have_it() {
        let mut v = CommittedView::new(&[1, 2, 3, 4]);
        v.on_installed(6, &[2, 3, 4], 2);
        let mut evidenced = BTreeSet::new();
        v.settle(3, &evidenced);
        assert_eq!(v.members(), &[1, 2, 3, 4], "member 4 may not have it");
        evidenced.insert(4);
        v.settle(3, &evidenced);
        assert_eq!(v.members(), &[2, 3, 4]);
    }

    #[test]
    fn a_removal_counts_once_stable_passes_it() {
        let mut v = CommittedView::new(&[1, 2, 3]);
        v.on_left(5, 3);
        v.advance(4);
        assert_eq!(v.members(), &[1, 2, 3]);
        v.advance(5);
        assert_eq!(v.members(), &[1, 2]);
    }

    #[test]
    fn a_joiner_counts_at_once_and_in_pending_epochs() {
        let mut v = CommittedView::new(&[1, 2, 3]);
        v.on_installed(7, &[2, 3], 2);
        v.on_joined(4);
        assert_eq!(v.members(), &[1, 2, 3, 4]);
        v.advance(7);
        assert_eq!(v.members(), &[2, 3, 4]);
    }

    #[test]
    fn changes_apply_in_order() {
        let mut v = CommittedView::new(&[1, 2, 3, 4]);
        v.on_left(3, 4);
        v.on_installed(6, &[1, 2, 3], 1);
        v.on_left(8, 1);
        v.advance(7);
        assert_eq!(v.members(), &[1, 2, 3]);
        v.advance(100);
        assert_eq!(v.members(), &[2, 3]);
    }
}
