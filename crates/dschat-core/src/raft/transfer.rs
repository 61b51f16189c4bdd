//! Leadership transfer (thesis §3.10): the leader stops taking proposals, brings the target's
//! log up to date, and sends it `TimeoutNow`; the target campaigns at once, and voters grant
//! its votes even though they still hear from the old leader (`VoteRequest::leadership_transfer`).
//! If the target has not won within an election timeout, the leader resumes.

use super::error::Error;
use super::message::Message;
use super::progress::ProgressState;
use super::role::{Role, Transfer};
use super::Node;
use crate::ids::NodeId;

impl Node {
    /// Begin handing leadership to `target`.
    pub(crate) fn start_transfer(&mut self, target: NodeId) -> Result<(), Error> {
        let Role::Leader(leader) = &mut self.role else {
            return Err(Error::NotLeader {
                leader_hint: self.leader(),
            });
        };
        if target == self.id {
            return Ok(());
        }
        if !self.membership.current().is_voter(target) {
            return Err(Error::InvalidMembershipChange(format!(
                "{target} is not a voter"
            )));
        }
        if leader.transfer.is_some() {
            return Err(Error::TransferInProgress);
        }
        leader.transfer = Some(Transfer {
            target,
            elapsed_ticks: 0,
            timeout_now_sent: false,
        });
        leader.reads.lease_revoked = true;
        let last_index = self.log.last_index();
        if let Some(progress) = leader.progress.get_mut(&target) {
            // Bring the target up to date now rather than at the next heartbeat: resend from
            // what it is known to hold (anything in flight may have been lost).
            let replicating = matches!(progress.state, ProgressState::Replicate { .. });
            if replicating && progress.match_index < last_index {
                progress.become_probe();
            }
        }
        self.send_append(target);
        self.maybe_send_timeout_now(target);
        Ok(())
    }

    /// Send TimeoutNow once the transfer target holds our whole log.
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let last_index = self.log.last_index();
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(transfer) = &mut leader.transfer else {
            return;
        };
        let caught_up = leader
            .progress
            .get(&peer)
            .is_some_and(|p| p.match_index == last_index);
        if transfer.target == peer && !transfer.timeout_now_sent && caught_up {
            transfer.timeout_now_sent = true;
            self.send(peer, Message::TimeoutNow);
        }
    }

    /// Our leader asks us to campaign now.
    pub(crate) fn handle_timeout_now(&mut self, from: NodeId) {
        let from_our_leader = matches!(&self.role, Role::Follower(f) if f.leader == Some(from));
        if from_our_leader && self.is_voter() {
            self.start_campaign(true);
        }
    }
}
