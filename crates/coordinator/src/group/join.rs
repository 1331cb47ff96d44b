//! JoinGroup (G4–G12) and the join phase: the rebalance barrier, the initial delay, the
//! generation bump, the leader and protocol choice.
//!
//! **Invariants:** see [`crate::group`]: no I/O, no clock; every request is answered exactly
//! once.

use super::*;

impl Coordinator {
    pub fn join_group(&mut self, request_id: RequestId, req: JoinGroupRequest, now_ms: i64) -> Output {
        let mut out = Output::default();
        if let Err(code) = self.join(request_id, &req, now_ms, &mut out) {
            join_error(&mut out, request_id, code, &req.member_id);
        }
        out
    }

    fn join(
        &mut self,
        request_id: RequestId,
        req: &JoinGroupRequest,
        now_ms: i64,
        out: &mut Output,
    ) -> Result<(), i16> {
        if req.group_id.is_empty() {
            return Err(INVALID_GROUP_ID);
        }
        let cfg = &self.config;
        if req.session_timeout_ms < cfg.group_min_session_timeout_ms
            || req.session_timeout_ms > cfg.group_max_session_timeout_ms
        {
            return Err(INVALID_SESSION_TIMEOUT);
        }
        if !self.state.groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                return Err(UNKNOWN_MEMBER_ID);
            }
            if req.protocol_type.is_empty() || req.protocols.is_empty() {
                return Err(INCONSISTENT_GROUP_PROTOCOL);
            }
            let mut group = ClassicGroup::new(req.group_id.clone());
            group.state_timestamp_ms = now_ms;
            self.state.groups.insert(req.group_id.clone(), group);
        }
        let group_max_size = self.config.group_max_size;
        let group = self.group_mut(&req.group_id);
        if group.state == GroupState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        if !group.supports_protocols(&req.protocol_type, &req.protocols) {
            return Err(INCONSISTENT_GROUP_PROTOCOL);
        }
        if req.member_id.is_empty() {
            if let Some(instance_id) = &req.group_instance_id {
                return self.join_new_static(request_id, req, instance_id, now_ms, out);
            }
            if group.members.len() >= group_max_size {
                return Err(GROUP_MAX_SIZE_REACHED);
            }
            let member_id = format!("{}-{}", req.client_id, req.member_id_suffix);
            if req.requires_known_member_id {
                // KIP-394 (G5): remember the id, expire it after a session timeout, ask again.
                group.pending_members.insert(member_id.clone());
                out.arm(&req.group_id, &member_id, TimerKind::Session, now_ms + i64::from(req.session_timeout_ms));
                join_error(out, request_id, MEMBER_ID_REQUIRED, &member_id);
                return Ok(());
            }
            self.add_member_and_rebalance(request_id, req, member_id, now_ms, out);
            return Ok(());
        }
        if group.pending_members.remove(&req.member_id) {
            if group.members.len() >= group_max_size {
                return Err(GROUP_MAX_SIZE_REACHED);
            }
            self.add_member_and_rebalance(request_id, req, req.member_id.clone(), now_ms, out);
            return Ok(());
        }
        validate_member(group, &req.member_id, req.group_instance_id.as_deref())?;
        let member = group.member(&req.member_id).expect("validated");
        let same_metadata = member.protocols == req.protocols;
        let is_leader = group.leader_id.as_deref() == Some(req.member_id.as_str());
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(request_id, req, now_ms, out);
                Ok(())
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if same_metadata && !(group.state == GroupState::Stable && is_leader) =>
            {
                let response = current_generation_response(group, &req.member_id, false);
                let member = group.member_mut(&req.member_id).expect("validated");
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                out.arm(&req.group_id, &req.member_id, TimerKind::Session, member.session_deadline_ms);
                out.complete(request_id, Response::JoinGroup(response));
                Ok(())
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(request_id, req, now_ms, out);
                Ok(())
            }
        }
    }

    /// G23 (KIP-345): a static member joining with an empty member id.
    pub(crate) fn join_new_static(
        &mut self,
        request_id: RequestId,
        req: &JoinGroupRequest,
        instance_id: &str,
        now_ms: i64,
        out: &mut Output,
    ) -> Result<(), i16> {
        let new_member_id = format!("{}-{}", instance_id, req.member_id_suffix);
        let group = self.group_mut(&req.group_id);
        let Some(old) = group.static_member(instance_id) else {
            if group.members.len() >= self.config.group_max_size {
                return Err(GROUP_MAX_SIZE_REACHED);
            }
            self.add_member_and_rebalance(request_id, req, new_member_id, now_ms, out);
            return Ok(());
        };
        // Replace the old member id: its parked requests are fenced.
        let old_id = old.member_id.clone();
        let member = group.member_mut(&old_id).expect("found above");
        member.member_id = new_member_id.clone();
        if let Some(parked) = member.awaiting_join.take() {
            join_error(out, parked, FENCED_INSTANCE_ID, &old_id);
        }
        if let Some(parked) = member.awaiting_sync.take() {
            sync_error(out, parked, FENCED_INSTANCE_ID);
        }
        if group.leader_id.as_deref() == Some(old_id.as_str()) {
            group.leader_id = Some(new_member_id.clone());
        }
        if group.pending_sync.remove(&old_id) {
            group.pending_sync.insert(new_member_id.clone());
        }
        out.cancel(&req.group_id, &old_id, TimerKind::Session);
        // G23: the new process's metadata replaces the old (it owns nothing yet, so the bytes
        // differ); only a change of the selected protocol forces a rebalance.
        let member = group.member_mut(&new_member_id).expect("renamed");
        member.protocols = req.protocols.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        let protocol_unchanged = group.select_protocol() == group.protocol_name;
        if group.state == GroupState::Stable && protocol_unchanged {
            // No rebalance: persist the new id, answer with the current generation.
            let member = group.member_mut(&new_member_id).expect("renamed");
            member.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
            out.arm(&req.group_id, &new_member_id, TimerKind::Session, member.session_deadline_ms);
            let group = &self.state.groups[&req.group_id];
            let record = group_metadata_record(group, now_ms);
            let is_leader = group.leader_id.as_deref() == Some(new_member_id.as_str());
            let response = current_generation_response(group, &new_member_id, is_leader);
            self.persist(out, record);
            out.complete(request_id, Response::JoinGroup(response));
            return Ok(());
        }
        let req = JoinGroupRequest { member_id: new_member_id, ..req.clone() };
        self.update_member_and_rebalance(request_id, &req, now_ms, out);
        Ok(())
    }

    pub(crate) fn add_member_and_rebalance(
        &mut self,
        request_id: RequestId,
        req: &JoinGroupRequest,
        member_id: String,
        now_ms: i64,
        out: &mut Output,
    ) {
        let join_timeout_ms = self.config.new_member_join_timeout_ms;
        let group = self.group_mut(&req.group_id);
        if group.members.is_empty() {
            group.protocol_type = Some(req.protocol_type.clone());
        }
        if group.leader_id.is_none() {
            group.leader_id = Some(member_id.clone());
        }
        let mut member = Member::new(member_id.clone());
        member.group_instance_id = req.group_instance_id.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.protocols = req.protocols.clone();
        member.awaiting_join = Some(request_id);
        member.is_new = true;
        // G11: a new member parked in JoinGroup is not kept alive by being parked.
        member.session_deadline_ms = now_ms + join_timeout_ms;
        out.arm(&req.group_id, &member_id, TimerKind::Session, member.session_deadline_ms);
        group.members.push(member);
        if let Some(delay) = &mut group.initial_delay {
            delay.new_member_added = true;
        }
        self.prepare_rebalance_or_complete_join(&req.group_id, now_ms, out);
    }

    pub(crate) fn update_member_and_rebalance(
        &mut self,
        request_id: RequestId,
        req: &JoinGroupRequest,
        now_ms: i64,
        out: &mut Output,
    ) {
        let group = self.group_mut(&req.group_id);
        let member = group.member_mut(&req.member_id).expect("member exists");
        member.protocols = req.protocols.clone();
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        // A JoinGroup that replaces a parked one: the old one is answered rather than dropped.
        if let Some(old) = member.awaiting_join.replace(request_id) {
            join_error(out, old, REBALANCE_IN_PROGRESS, &req.member_id);
        }
        self.prepare_rebalance_or_complete_join(&req.group_id, now_ms, out);
    }

    pub(crate) fn prepare_rebalance_or_complete_join(&mut self, group_id: &str, now_ms: i64, out: &mut Output) {
        match self.state.groups[group_id].state {
            GroupState::PreparingRebalance => self.maybe_complete_join(group_id, now_ms, out),
            GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable => {
                self.prepare_rebalance(group_id, now_ms, out)
            }
            GroupState::Dead => {}
        }
    }

    /// Starts a join phase (G7), with the initial delay (G10) if the group was Empty.
    pub(crate) fn prepare_rebalance(&mut self, group_id: &str, now_ms: i64, out: &mut Output) {
        let initial_delay_ms = self.config.group_initial_rebalance_delay_ms;
        let group = self.group_mut(group_id);
        if group.state == GroupState::CompletingRebalance {
            // G17: parked SyncGroups learn that another rebalance started.
            for member in &mut group.members {
                member.assignment = Bytes::new();
                if let Some(parked) = member.awaiting_sync.take() {
                    sync_error(out, parked, REBALANCE_IN_PROGRESS);
                }
            }
        }
        group.pending_sync.clear();
        out.cancel(group_id, "", TimerKind::PendingSync);
        let was_empty = group.state == GroupState::Empty;
        group.state = GroupState::PreparingRebalance;
        group.state_timestamp_ms = now_ms;
        let rebalance_timeout_ms = group.rebalance_timeout_ms();
        if was_empty && initial_delay_ms > 0 {
            let delay_ms = initial_delay_ms.min(rebalance_timeout_ms);
            group.initial_delay = Some(InitialDelay {
                new_member_added: false,
                remaining_ms: (rebalance_timeout_ms - initial_delay_ms).max(0),
            });
            out.arm(group_id, "", TimerKind::InitialDelay, now_ms + delay_ms);
        } else {
            out.arm(group_id, "", TimerKind::Join, now_ms + rebalance_timeout_ms);
            self.maybe_complete_join(group_id, now_ms, out);
        }
    }

    pub(crate) fn maybe_complete_join(&mut self, group_id: &str, now_ms: i64, out: &mut Output) {
        let group = &self.state.groups[group_id];
        if group.state == GroupState::PreparingRebalance
            && group.initial_delay.is_none()
            && group.has_all_members_joined()
        {
            self.complete_join(group_id, now_ms, out);
        }
    }

    /// Ends the join phase (G7, G8): drops dynamic members that did not rejoin, bumps the
    /// generation, selects the protocol and answers every parked JoinGroup.
    pub(crate) fn complete_join(&mut self, group_id: &str, now_ms: i64, out: &mut Output) {
        out.cancel(group_id, "", TimerKind::Join);
        out.cancel(group_id, "", TimerKind::InitialDelay);
        let group = self.group_mut(group_id);
        group.initial_delay = None;
        let gone: Vec<String> = group
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in &gone {
            remove_member(group, member_id, out);
        }
        if !group.members.is_empty() && !elect_joined_leader(group) {
            // Nobody rejoined (only static members left): wait another rebalance timeout.
            let deadline_ms = now_ms + group.rebalance_timeout_ms();
            out.arm(group_id, "", TimerKind::Join, deadline_ms);
            return;
        }
        group.generation_id += 1;
        group.state_timestamp_ms = now_ms;
        if group.members.is_empty() {
            group.protocol_name = None;
            group.leader_id = None;
            group.state = GroupState::Empty;
            let record = group_metadata_record(group, now_ms);
            self.persist(out, record);
            return;
        }
        group.protocol_name = group.select_protocol();
        group.state = GroupState::CompletingRebalance;
        group.pending_sync = group.members.iter().map(|m| m.member_id.clone()).collect();
        out.arm(group_id, "", TimerKind::PendingSync, now_ms + group.rebalance_timeout_ms());
        let leader_id = group.leader_id.clone().expect("elected");
        let responses: Vec<(RequestId, JoinGroupResponse)> = group
            .members
            .iter()
            .filter_map(|m| {
                let parked = m.awaiting_join?;
                Some((parked, current_generation_response(group, &m.member_id, false)))
            })
            .collect();
        for member in &mut group.members {
            if member.awaiting_join.take().is_some() {
                member.is_new = false;
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                out.arm(group_id, &member.member_id, TimerKind::Session, member.session_deadline_ms);
            }
        }
        debug_assert!(group.member(&leader_id).is_some());
        for (parked, response) in responses {
            out.complete(parked, Response::JoinGroup(response));
        }
    }
}
