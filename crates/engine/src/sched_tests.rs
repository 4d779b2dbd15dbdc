//! Scheduler decisions without a model: budgets, chunked prefill, preemption, prefix reuse.

use super::*;
use proptest::prelude::*;

fn config(budget: usize, max_seqs: usize) -> SchedConfig {
    SchedConfig { max_num_batched_tokens: budget, max_num_seqs: max_seqs, block_size: 4 }
}

fn prompt(id: u64, len: usize) -> SeqState {
    SeqState::new(id, (0..len as u32).map(|t| t + 100 * id as u32).collect())
}

/// Runs one step the way the engine does: complete, then append a token to every request
/// whose prompt is fully computed.
fn step(s: &mut Scheduler<SeqState>, pool: &mut BlockPool) -> StepPlan {
    let plan = s.schedule(pool);
    s.complete(&plan, pool);
    for r in s.running_mut() {
        if r.pending() == 0 {
            r.tokens.push(7);
        }
    }
    plan
}

#[test]
fn decode_first_then_chunked_prefill_within_budget() {
    let mut pool = BlockPool::new(100, false);
    let mut s = Scheduler::new(config(10, 8));
    s.add(prompt(1, 6));
    let plan = step(&mut s, &mut pool);
    assert_eq!(plan.scheduled, vec![Scheduled { index: 0, num_tokens: 6 }]);
    s.add(prompt(2, 25));
    let plan = step(&mut s, &mut pool);
    // request 1 decodes one token; request 2 gets the remaining 9 of the budget
    assert_eq!(plan.scheduled, vec![Scheduled { index: 0, num_tokens: 1 }, Scheduled { index: 1, num_tokens: 9 }]);
    let plan = step(&mut s, &mut pool);
    assert_eq!(plan.scheduled, vec![Scheduled { index: 0, num_tokens: 1 }, Scheduled { index: 1, num_tokens: 9 }]);
    let plan = step(&mut s, &mut pool);
    assert_eq!(plan.scheduled[1], Scheduled { index: 1, num_tokens: 7 }, "the prompt's last chunk");
    assert!(plan.total_tokens() <= 10);
}

#[test]
fn max_num_seqs_limits_admission() {
    let mut pool = BlockPool::new(100, false);
    let mut s = Scheduler::new(config(100, 2));
    for id in 0..3 {
        s.add(prompt(id, 3));
    }
    let plan = step(&mut s, &mut pool);
    assert_eq!(plan.scheduled.len(), 2);
    assert_eq!(s.num_waiting(), 1);
}

#[test]
fn newest_request_is_preempted_and_oldest_progresses() {
    // 4 blocks of 4 tokens: two requests of 7 tokens fill them
    let mut pool = BlockPool::new(4, false);
    let mut s = Scheduler::new(config(100, 8));
    s.add(prompt(1, 7));
    s.add(prompt(2, 7));
    step(&mut s, &mut pool);
    assert_eq!(pool.num_free(), 0);
    // both decode their 8th token into their second block, then request 1 needs a third
    step(&mut s, &mut pool);
    let plan = step(&mut s, &mut pool);
    assert_eq!(plan.preempted, vec![2]);
    assert_eq!(plan.scheduled, vec![Scheduled { index: 0, num_tokens: 1 }]);
    assert_eq!(s.running().len(), 1);
    assert_eq!(s.num_waiting(), 1);
    // the preempted request lost its computed state and will recompute all its tokens
    let victim = s.abort(2, &mut pool).unwrap();
    assert_eq!((victim.num_computed, victim.preemptions, victim.tokens.len()), (0, 1, 9));
}

#[test]
fn abort_frees_blocks_at_once() {
    let mut pool = BlockPool::new(10, true);
    let mut s = Scheduler::new(config(100, 8));
    s.add(prompt(1, 9));
    step(&mut s, &mut pool);
    assert_eq!(pool.num_free(), 7);
    s.abort(1, &mut pool).unwrap();
    assert_eq!(pool.num_free(), 10);
    assert!(s.is_idle());
}

#[test]
fn shared_prefix_is_reused_except_the_last_token() {
    let mut pool = BlockPool::new(20, true);
    let mut s = Scheduler::new(config(100, 8));
    let shared: Vec<u32> = (0..12).collect();
    s.add(SeqState::new(1, shared.iter().copied().chain([50, 51]).collect()));
    step(&mut s, &mut pool);
    s.add(SeqState::new(2, shared.iter().copied().chain([60]).collect()));
    let plan = step(&mut s, &mut pool);
    // 12 shared tokens = 3 full blocks cached; request 2 computes only its 13th token
    assert_eq!(plan.scheduled[1], Scheduled { index: 1, num_tokens: 1 });
    assert_eq!(s.running()[1].cached_tokens, 12);
    assert_eq!(s.running()[1].block_table[..3], s.running()[0].block_table[..3]);
    // an identical prompt still recomputes its last token
    s.add(SeqState::new(3, shared.clone()));
    let plan = step(&mut s, &mut pool);
    assert_eq!(plan.scheduled[2], Scheduled { index: 2, num_tokens: 4 });
    assert_eq!(s.running()[2].cached_tokens, 8);
}

/// Finishes the running request that `pick` points at, if any.
fn finish_one(s: &mut Scheduler<SeqState>, pool: &mut BlockPool, pick: u64) {
    let n = s.running().len();
    if n > 0 {
        let victim = (pick as usize) % n;
        let mut i = 0;
        s.finish_where(pool, |_| {
            i += 1;
            i - 1 == victim
        });
    }
}

/// Aborts the request with id `pick` modulo the ids given out, wherever it is.
fn abort_one(s: &mut Scheduler<SeqState>, pool: &mut BlockPool, pick: u64, next_id: u64) {
    if next_id > 0 {
        s.abort(pick % next_id, pool);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// 1,000 random add / step / finish / abort operations never exceed the budget or the
    /// sequence limit, and leak no block.
    #[test]
    fn no_block_leaks_under_random_operations(ops in prop::collection::vec((0u8..4, 1usize..40, any::<u64>()), 1000)) {
        let blocks = 24;
        let mut pool = BlockPool::new(blocks, true);
        let mut s = Scheduler::new(config(32, 6));
        let mut next_id = 0u64;
        for (op, len, pick) in ops {
            match op {
                0 => {
                    // shared prefixes exercise the cache; prompts fit the pool alone
                    s.add(SeqState::new(next_id, (0..len as u32).map(|t| t % 13).collect()));
                    next_id += 1;
                }
                1 => {
                    let plan = step(&mut s, &mut pool);
                    prop_assert!(plan.total_tokens() <= 32);
                    prop_assert!(s.running().len() <= 6);
                }
                2 => finish_one(&mut s, &mut pool, pick),
                _ => abort_one(&mut s, &mut pool, pick, next_id),
            }
            // requests may grow past the pool: finish those that cannot fit alone
            s.finish_where(&mut pool, |r| r.tokens.len() > (blocks - 1) * 4);
        }
        s.drain_all(&mut pool);
        prop_assert_eq!(pool.num_free(), blocks);
        for id in 0..blocks as u32 {
            prop_assert_eq!(pool.ref_count(id), 0);
        }
    }
}

/// One step with speculation the way the engine runs it: drafts offered, schedule, then
/// "sampling" accepts a random prefix of each draft and appends one token of its own, then
/// complete.
fn step_with_drafts(s: &mut Scheduler<SeqState>, pool: &mut BlockPool, rng: &mut u64) -> (StepPlan, usize) {
    let mut next = || {
        *rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*rng >> 33) as usize
    };
    for r in s.running_mut() {
        if r.pending() == 1 {
            r.draft = (0..next() % 7).map(|_| 100 + (next() % 100) as u32).collect();
        }
    }
    let plan = s.schedule(pool);
    let mut verified = 0;
    for sched in &plan.scheduled {
        let r = &mut s.running_mut()[sched.index];
        let drafted = r.draft.len();
        verified += drafted;
        if r.num_computed + sched.num_tokens - drafted < r.tokens.len() {
            continue; // a prefill chunk that is not the last
        }
        let accepted = next() % (drafted + 1);
        let kept: Vec<u32> = r.draft[..accepted].to_vec();
        r.tokens.extend(kept);
        r.tokens.push(7); // the sampled token, never equal to a draft token (>= 100)
        r.draft_accepted = accepted;
    }
    s.complete(&plan, pool);
    (plan, verified)
}

/// What must hold of every running sequence between steps.
fn check_sequence(r: &SeqState, bs: usize) -> Result<(), TestCaseError> {
    prop_assert!(r.draft.is_empty(), "drafts live for one step only");
    prop_assert!(r.num_computed < r.tokens.len(), "at least one token pending");
    prop_assert!(r.block_table.len() * bs >= r.num_computed);
    prop_assert!(r.block_table.len() <= r.tokens.len().div_ceil(bs), "no block held for rejected tokens");
    prop_assert_eq!(r.block_hashes.len(), r.num_computed / bs);
    let mut parent = None;
    for (b, &hash) in r.block_hashes.iter().enumerate() {
        let expected = BlockHash::of(parent, &r.tokens[b * bs..(b + 1) * bs]);
        prop_assert_eq!(hash, expected, "a cached block holds tokens the sequence does not have");
        parent = Some(hash);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// 1,000 random add / draft-accept-reject steps / finish / abort operations: no block is
    /// leaked, no block is held past a sequence's tokens, and the prefix cache registers
    /// only accepted tokens.
    #[test]
    fn drafts_leak_nothing_and_cache_only_accepted_tokens(ops in prop::collection::vec((0u8..5, 1usize..40, any::<u64>()), 1000)) {
        let (blocks, bs) = (24, 4);
        let mut pool = BlockPool::new(blocks, true);
        let mut s = Scheduler::new(config(32, 6));
        let (mut next_id, mut rng, mut verified) = (0u64, 1u64, 0);
        for (op, len, pick) in ops {
            match op {
                0 => {
                    s.add(SeqState::new(next_id, (0..len as u32).map(|t| t % 13).collect()));
                    next_id += 1;
                }
                1 | 2 => {
                    rng ^= pick;
                    let (plan, drafted) = step_with_drafts(&mut s, &mut pool, &mut rng);
                    verified += drafted;
                    prop_assert!(plan.total_tokens() <= 32);
                    for r in s.running() {
                        check_sequence(r, bs)?;
                    }
                }
                3 => finish_one(&mut s, &mut pool, pick),
                _ => abort_one(&mut s, &mut pool, pick, next_id),
            }
            s.finish_where(&mut pool, |r| r.tokens.len() > (blocks - 1) * bs);
        }
        prop_assert!(verified > 0, "no draft was ever scheduled");
        s.drain_all(&mut pool);
        prop_assert_eq!(pool.num_free(), blocks);
        for id in 0..blocks as u32 {
            prop_assert_eq!(pool.ref_count(id), 0);
        }
    }
}
