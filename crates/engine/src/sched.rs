//! Continuous batching: each step gets one token budget, shared by running requests first
//! (decode tokens, unfinished prefills) and then waiting ones in arrival order (chunked
//! prefill); when KV blocks run out the most recently admitted request is preempted.
//! Pure bookkeeping: no model, testable alone.

use std::collections::VecDeque;

use crate::kv::{block_hashes, BlockHash, BlockId, BlockPool};

/// Limits of the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedConfig {
    pub max_num_batched_tokens: usize,
    pub max_num_seqs: usize,
    pub block_size: usize,
}

/// What the scheduler tracks of one request.
#[derive(Debug, Clone, Default)]
pub struct SeqState {
    pub id: u64,
    /// Prompt followed by the tokens generated so far.
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    /// Tokens whose keys and values are in the blocks.
    pub num_computed: usize,
    pub block_table: Vec<BlockId>,
    /// Hashes of the full blocks registered in the prefix cache so far.
    pub block_hashes: Vec<BlockHash>,
    /// Prompt tokens served from the prefix cache at admission.
    pub cached_tokens: usize,
    pub preemptions: u32,
    /// Drafted tokens to verify after the pending one this step (speculative decoding).
    pub draft: Vec<u32>,
    /// How many of `draft` the step's sampling accepted.
    pub draft_accepted: usize,
}

impl SeqState {
    pub fn new(id: u64, prompt: Vec<u32>) -> Self {
        SeqState { id, prompt_len: prompt.len(), tokens: prompt, ..Default::default() }
    }

    /// Tokens still to be fed to the model.
    pub fn pending(&self) -> usize {
        self.tokens.len() - self.num_computed
    }
}

/// Requests the scheduler can hold: anything that carries a `SeqState`.
pub trait Schedulable {
    fn seq(&self) -> &SeqState;
    fn seq_mut(&mut self) -> &mut SeqState;
}

impl Schedulable for SeqState {
    fn seq(&self) -> &SeqState {
        self
    }
    fn seq_mut(&mut self) -> &mut SeqState {
        self
    }
}

/// One running request's share of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// Index into `Scheduler::running()` after scheduling.
    pub index: usize,
    pub num_tokens: usize,
}

/// The decisions of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepPlan {
    pub scheduled: Vec<Scheduled>,
    /// Ids of requests preempted (moved back to waiting, blocks freed) in this step.
    pub preempted: Vec<u64>,
}

impl StepPlan {
    pub fn total_tokens(&self) -> usize {
        self.scheduled.iter().map(|s| s.num_tokens).sum()
    }
}

/// Waiting and running requests.
pub struct Scheduler<R> {
    config: SchedConfig,
    waiting: VecDeque<R>,
    running: Vec<R>,
}

impl<R: Schedulable> Scheduler<R> {
    pub fn new(config: SchedConfig) -> Self {
        Scheduler { config, waiting: VecDeque::new(), running: Vec::new() }
    }

    pub fn config(&self) -> SchedConfig {
        self.config
    }

    pub fn add(&mut self, request: R) {
        self.waiting.push_back(request);
    }

    pub fn running(&self) -> &[R] {
        &self.running
    }

    pub fn running_mut(&mut self) -> &mut [R] {
        &mut self.running
    }

    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Decides this step's batch, allocating blocks (and preempting) as needed.
    pub fn schedule(&mut self, pool: &mut BlockPool) -> StepPlan {
        self.schedule_within(pool, self.config.max_num_batched_tokens)
    }

    /// `schedule` with a smaller token budget for this step (never below one token per
    /// running request, so that decoding always moves).
    pub fn schedule_within(&mut self, pool: &mut BlockPool, budget: usize) -> StepPlan {
        let mut plan = StepPlan::default();
        let mut budget = budget.max(self.running.len() + 1).min(self.config.max_num_batched_tokens);
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let want = self.fit_draft(i, budget, pool);
            if want == 0 {
                i += 1;
                continue;
            }
            if !self.make_room(i, want, pool, &mut plan) {
                break; // request i itself was preempted
            }
            plan.scheduled.push(Scheduled { index: i, num_tokens: want });
            budget -= want;
            i += 1;
        }
        let unscheduled = i.min(self.running.len());
        for request in &mut self.running[unscheduled..] {
            request.seq_mut().draft.clear(); // not scheduled this step
        }
        if plan.preempted.is_empty() {
            self.admit_waiting(pool, &mut budget, &mut plan);
        }
        plan
    }

    /// Tokens running[i] runs this step: its pending ones plus as much of its draft as the
    /// budget and the free blocks allow (a draft never preempts anyone).
    fn fit_draft(&mut self, i: usize, budget: usize, pool: &mut BlockPool) -> usize {
        let bs = self.config.block_size;
        let seq = self.running[i].seq_mut();
        let pending = seq.pending();
        if pending != 1 {
            seq.draft.clear(); // drafts follow a decode token only
        }
        seq.draft.truncate(budget.saturating_sub(pending));
        if !seq.draft.is_empty() && !allocate_slots(seq, pending + seq.draft.len(), bs, pool) {
            seq.draft.clear();
        }
        (pending + seq.draft.len()).min(budget)
    }

    /// Allocates blocks for `want` more tokens of running[i], preempting the newest
    /// requests while blocks are short. False when running[i] itself had to go.
    fn make_room(&mut self, i: usize, want: usize, pool: &mut BlockPool, plan: &mut StepPlan) -> bool {
        loop {
            if allocate_slots(self.running[i].seq_mut(), want, self.config.block_size, pool) {
                return true;
            }
            let mut victim = self.running.pop().expect("running[i] exists");
            preempt(victim.seq_mut(), pool);
            plan.preempted.push(victim.seq().id);
            self.waiting.push_front(victim);
            if self.running.len() == i {
                return false;
            }
        }
    }

    fn admit_waiting(&mut self, pool: &mut BlockPool, budget: &mut usize, plan: &mut StepPlan) {
        let bs = self.config.block_size;
        while *budget > 0 && self.running.len() < self.config.max_num_seqs {
            let Some(front) = self.waiting.front_mut() else { break };
            let seq = front.seq_mut();
            if seq.num_computed == 0 && seq.block_table.is_empty() {
                reuse_cached_prefix(seq, bs, pool);
            }
            let want = seq.pending().min(*budget);
            if !allocate_slots(seq, want, bs, pool) {
                reset_blocks(seq, pool); // gives back the prefix blocks taken above
                break;
            }
            let request = self.waiting.pop_front().expect("front exists");
            plan.scheduled.push(Scheduled { index: self.running.len(), num_tokens: want });
            self.running.push(request);
            *budget -= want;
        }
    }

    /// After the model ran `plan` and its tokens were sampled: the scheduled tokens are
    /// computed, except drafted ones that were rejected (their blocks go back); full blocks
    /// enter the prefix cache.
    pub fn complete(&mut self, plan: &StepPlan, pool: &mut BlockPool) {
        let bs = self.config.block_size;
        for s in &plan.scheduled {
            let seq = self.running[s.index].seq_mut();
            let drafted = seq.draft.len();
            seq.num_computed += s.num_tokens - drafted + seq.draft_accepted.min(drafted);
            seq.draft.clear();
            seq.draft_accepted = 0;
            release_blocks_past(seq, seq.num_computed.max(seq.tokens.len()).div_ceil(bs), pool);
            register_full_blocks(seq, bs, pool);
        }
    }

    /// Removes running requests for which `done` says true, freeing their blocks.
    pub fn finish_where(&mut self, pool: &mut BlockPool, mut done: impl FnMut(&mut R) -> bool) -> Vec<R> {
        let mut finished = Vec::new();
        let mut kept = Vec::with_capacity(self.running.len());
        for mut request in self.running.drain(..) {
            if done(&mut request) {
                pool.release_all(&std::mem::take(&mut request.seq_mut().block_table));
                finished.push(request);
            } else {
                kept.push(request);
            }
        }
        self.running = kept;
        finished
    }

    /// Removes a request wherever it is and frees its blocks at once.
    pub fn abort(&mut self, id: u64, pool: &mut BlockPool) -> Option<R> {
        let mut request = if let Some(i) = self.running.iter().position(|r| r.seq().id == id) {
            self.running.remove(i)
        } else {
            let i = self.waiting.iter().position(|r| r.seq().id == id)?;
            self.waiting.remove(i)?
        };
        pool.release_all(&std::mem::take(&mut request.seq_mut().block_table));
        Some(request)
    }

    /// Removes every request (shutdown), freeing their blocks.
    pub fn drain_all(&mut self, pool: &mut BlockPool) -> Vec<R> {
        let mut all: Vec<R> = self.running.drain(..).collect();
        all.extend(self.waiting.drain(..));
        for r in &mut all {
            pool.release_all(&std::mem::take(&mut r.seq_mut().block_table));
        }
        all
    }
}

/// Ensures blocks for `seq.num_computed + want` tokens; all or nothing.
fn allocate_slots(seq: &mut SeqState, want: usize, bs: usize, pool: &mut BlockPool) -> bool {
    let needed = (seq.num_computed + want).div_ceil(bs).saturating_sub(seq.block_table.len());
    if needed > pool.num_free() {
        return false;
    }
    for _ in 0..needed {
        seq.block_table.push(pool.allocate().expect("counted free blocks"));
    }
    true
}

/// Frees everything a request holds; it will be recomputed from its tokens.
fn preempt(seq: &mut SeqState, pool: &mut BlockPool) {
    reset_blocks(seq, pool);
    seq.preemptions += 1;
}

/// Gives back the blocks of a table past its first `keep`.
fn release_blocks_past(seq: &mut SeqState, keep: usize, pool: &mut BlockPool) {
    if seq.block_table.len() > keep {
        pool.release_all(&seq.block_table[keep..]);
        seq.block_table.truncate(keep);
    }
}

fn reset_blocks(seq: &mut SeqState, pool: &mut BlockPool) {
    pool.release_all(&std::mem::take(&mut seq.block_table));
    seq.draft.clear();
    seq.draft_accepted = 0;
    seq.block_hashes.clear();
    seq.num_computed = 0;
    seq.cached_tokens = 0;
}

/// Starts a new (or preempted) request on the longest cached chain of its full blocks,
/// always leaving at least its last token to compute (its logits are needed).
fn reuse_cached_prefix(seq: &mut SeqState, bs: usize, pool: &mut BlockPool) {
    if !pool.prefix_caching() {
        return;
    }
    let usable = (seq.tokens.len() - 1) / bs;
    let hashes = block_hashes(&seq.tokens[..usable * bs], bs);
    let hits = pool.lookup_prefix(&hashes);
    seq.num_computed = hits.len() * bs;
    seq.cached_tokens = seq.num_computed;
    seq.block_hashes = hashes[..hits.len()].to_vec();
    seq.block_table = hits;
}

fn register_full_blocks(seq: &mut SeqState, bs: usize, pool: &mut BlockPool) {
    if !pool.prefix_caching() {
        return;
    }
    let full = seq.num_computed / bs;
    while seq.block_hashes.len() < full {
        let b = seq.block_hashes.len();
        let hash = BlockHash::of(seq.block_hashes.last().copied(), &seq.tokens[b * bs..(b + 1) * bs]);
        pool.register(seq.block_table[b], hash);
        seq.block_hashes.push(hash);
    }
}

#[cfg(test)]
#[path = "sched_tests.rs"]
mod tests;
