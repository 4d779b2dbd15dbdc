//! The engine core on its own thread: schedule, run one batch, sample, update, repeat.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use hearth_model::{BatchSpan, LogitsWanted, Model};
use rayon::prelude::*;
use hearth_tokenizer::Tokenizer;

use crate::config::KvPlan;
use crate::generate::FinishReason;
use crate::kv::storage::PagedBatch;
use crate::kv::{BlockPool, PagedKv};
use crate::metrics::EngineMetrics;
use crate::pace::StepPacer;
use crate::request::Request;
use crate::sched::{SchedConfig, Scheduler, StepPlan};
use crate::spec::{allot_drafts, propose_ngram, DraftOffer, SpecConfig, StepCost};

/// Speculative decoding as configured, with this machine's measured cost per step size.
pub struct Speculation {
    pub config: SpecConfig,
    pub cost: StepCost,
}

/// All state of the engine; owned by the engine thread.
pub struct EngineCore {
    model: Arc<Model>,
    tokenizer: Arc<Tokenizer>,
    pool: BlockPool,
    kv: PagedKv,
    sched: Scheduler<Request>,
    metrics: Arc<EngineMetrics>,
    speculation: Option<Speculation>,
    pace: StepPacer,
}

impl EngineCore {
    pub fn new(
        model: Arc<Model>,
        tokenizer: Arc<Tokenizer>,
        plan: &KvPlan,
        sched: SchedConfig,
        prefix_caching: bool,
        metrics: Arc<EngineMetrics>,
    ) -> Self {
        let kv = PagedKv::new(model.config(), plan.num_blocks, plan.block_size);
        EngineCore {
            pool: BlockPool::new(plan.num_blocks, prefix_caching),
            kv,
            sched: Scheduler::new(sched),
            model,
            tokenizer,
            metrics,
            speculation: None,
            pace: StepPacer::new(f64::INFINITY, sched.max_num_batched_tokens),
        }
    }

    /// Keeps steps near `seconds` by shrinking the token budget where they take longer.
    pub fn pace_steps(&mut self, seconds: f64) {
        self.pace = StepPacer::new(seconds, self.sched.config().max_num_batched_tokens);
    }

    /// Turns on n-gram speculation, measuring what steps of different sizes cost here.
    pub fn enable_speculation(&mut self, config: SpecConfig) -> &Speculation {
        let cost = if config.always_draft { StepCost::new(Vec::new()) } else { self.measure_step_cost() };
        self.speculation.insert(Speculation { config, cost })
    }

    /// Times forward passes of 1, 2, 4 ... 32 tokens over blocks borrowed from the pool, which
    /// gets them back (the best of two up to 8 tokens, where drafts are decided; larger steps
    /// are extrapolated from the last two points).
    fn measure_step_cost(&mut self) -> StepCost {
        let bs = self.sched.config().block_size;
        let most = self.sched.config().max_num_batched_tokens.min(self.pool.num_free() * bs).min(32);
        let vocab = self.model.config().vocab_size as u32;
        let tokens: Vec<u32> = (0..most as u32).map(|i| (i * 7919 + 13) % vocab).collect();
        let table: Vec<_> = (0..most.div_ceil(bs)).filter_map(|_| self.pool.allocate()).collect();
        let mut time = |n: usize| {
            let spans = [BatchSpan { tokens: &tokens[..n], start: 0, logits: LogitsWanted::All }];
            let mut batch = PagedBatch { kv: &mut self.kv, tables: vec![table.as_slice()] };
            let start = Instant::now();
            let _ = self.model.forward_batch(&spans, &mut batch);
            start.elapsed().as_secs_f64()
        };
        time(1); // warm-up: first touch of the blocks and scratch buffers
        let sizes = (0..6).map(|p| 1usize << p).filter(|&n| n <= most);
        let points = sizes.map(|n| (n, if n <= 8 { time(n).min(time(n)) } else { time(n) })).collect();
        self.pool.release_all(&table);
        StepCost::new(points)
    }

    pub fn add(&mut self, request: Request) {
        self.sched.add(request);
        self.publish_gauges();
    }

    pub fn is_idle(&self) -> bool {
        self.sched.is_idle()
    }

    /// Aborts a request wherever it is; its blocks are free when this returns.
    pub fn abort(&mut self, id: u64) {
        if let Some(mut request) = self.sched.abort(id, &mut self.pool) {
            request.processor.abort(&self.tokenizer);
            request.emit_finished(FinishReason::Abort, &self.metrics);
        }
        self.publish_gauges();
    }

    /// Cancels everything (shutdown without draining).
    pub fn abort_all(&mut self) {
        for mut request in self.sched.drain_all(&mut self.pool) {
            request.processor.abort(&self.tokenizer);
            request.emit_finished(FinishReason::Abort, &self.metrics);
        }
        self.publish_gauges();
    }

    /// One engine iteration. Returns false when there was nothing to run.
    pub fn step(&mut self) -> bool {
        let started = Instant::now();
        self.propose_drafts();
        let plan = self.sched.schedule_within(&mut self.pool, self.pace.budget());
        self.metrics.num_preemptions.fetch_add(plan.preempted.len() as u64, Relaxed);
        if plan.scheduled.is_empty() {
            self.publish_gauges();
            return false;
        }
        match self.execute(&plan) {
            Ok(logits) => {
                self.sample_all(&plan, logits);
                self.sched.complete(&plan, &mut self.pool);
            }
            Err(message) => {
                for s in &plan.scheduled {
                    let request = &mut self.sched.running_mut()[s.index];
                    request.emit_error(message.clone());
                    request.disconnected = true;
                }
            }
        }
        self.retire_finished();
        self.publish_gauges();
        let took = started.elapsed();
        self.metrics.step_duration.observe(took.as_secs_f64());
        self.pace.record(plan.total_tokens(), took);
        true
    }

    /// Flattens the plan into one batch and runs the model over the paged cache.
    fn execute(&mut self, plan: &StepPlan) -> Result<Vec<Vec<f32>>, String> {
        let running = self.sched.running();
        let drafted: Vec<Vec<u32>> = plan
            .scheduled
            .iter()
            .map(|s| &running[s.index].seq)
            .filter(|seq| !seq.draft.is_empty())
            .map(|seq| seq.tokens[seq.num_computed..].iter().chain(&seq.draft).copied().collect())
            .collect();
        let mut verified = drafted.iter().map(Vec::as_slice);
        let mut spans = Vec::with_capacity(plan.scheduled.len());
        let mut tables = Vec::with_capacity(plan.scheduled.len());
        for s in &plan.scheduled {
            let seq = &running[s.index].seq;
            let start = seq.num_computed;
            let end = start + s.num_tokens - seq.draft.len();
            if seq.draft.is_empty() {
                let logits = if end == seq.tokens.len() { LogitsWanted::Last } else { LogitsWanted::None };
                spans.push(BatchSpan { tokens: &seq.tokens[start..end], start, logits });
            } else {
                // the pending token and the draft behind it, every position's logits wanted
                let tokens = verified.next().expect("one buffer per drafted sequence");
                spans.push(BatchSpan { tokens, start, logits: LogitsWanted::All });
            }
            tables.push(seq.block_table.as_slice());
            if start < seq.prompt_len {
                let computed = end.min(seq.prompt_len) - start;
                self.metrics.prompt_tokens_computed.fetch_add(computed as u64, Relaxed);
            }
        }
        let mut batch = PagedBatch { kv: &mut self.kv, tables };
        self.model.forward_batch(&spans, &mut batch).map_err(|e| format!("model error: {e}"))
    }

    fn sample_all(&mut self, plan: &StepPlan, logits: Vec<Vec<f32>>) {
        let vocab = self.model.config().vocab_size;
        let running = self.sched.running_mut();
        prepare_grammar_masks(running, plan, &logits);
        for (s, mut rows) in plan.scheduled.iter().zip(logits) {
            let request = &mut running[s.index];
            if rows.is_empty() || request.is_done() {
                continue; // a prefill chunk that is not the last, or a client already gone
            }
            request.sample_rows(&self.tokenizer, &mut rows, vocab, &self.metrics);
        }
    }

    /// Gives each decoding sequence that speculates a draft from its own tokens, as long as
    /// the step's expected tokens per second gain from it.
    fn propose_drafts(&mut self) {
        let Some(speculation) = &self.speculation else { return };
        let config = speculation.config;
        let budget = self.pace.budget();
        let running = self.sched.running_mut();
        let drafts: Vec<&[u32]> = running
            .iter()
            .map(|r| match r.draft_room(config.num_speculative_tokens) {
                0 => &[][..],
                room => propose_ngram(&r.seq.tokens, config.ngram_min, config.ngram_max, room),
            })
            .collect();
        if drafts.iter().all(|d| d.is_empty()) {
            return;
        }
        let offers: Vec<DraftOffer> =
            running.iter().zip(&drafts).map(|(r, d)| DraftOffer { rate: r.acceptance.rate(), available: d.len() }).collect();
        let base = running.iter().map(|r| r.seq.pending()).sum::<usize>().min(budget);
        let allotted = match config.always_draft {
            true => offers.iter().map(|o| o.available).collect(),
            false => allot_drafts(&offers, base, budget, &speculation.cost),
        };
        let drafts: Vec<Vec<u32>> = drafts.iter().zip(allotted).map(|(d, n)| d[..n].to_vec()).collect();
        for (request, draft) in running.iter_mut().zip(drafts) {
            request.seq.draft = draft;
        }
    }

    fn retire_finished(&mut self) {
        let finished = self.sched.finish_where(&mut self.pool, |r| r.is_done());
        for mut request in finished {
            let reason = match request.processor.finish_reason() {
                Some(reason) => reason,
                None => {
                    // the client went away mid-generation
                    request.processor.abort(&self.tokenizer);
                    FinishReason::Abort
                }
            };
            request.emit_finished(reason, &self.metrics);
        }
    }

    fn publish_gauges(&self) {
        let m = &self.metrics;
        m.num_running.store(self.sched.running().len() as u64, Relaxed);
        m.num_waiting.store(self.sched.num_waiting() as u64, Relaxed);
        m.kv_usage_ppm.store((self.pool.usage() * 1e6) as u64, Relaxed);
        let stats = self.pool.stats();
        m.prefix_queries.store(stats.prefix_queries, Relaxed);
        m.prefix_hits.store(stats.prefix_hits, Relaxed);
    }
}

/// Computes the grammar masks of this step's constrained requests, in parallel when there are
/// several (the cores are idle between forward passes).
fn prepare_grammar_masks(running: &mut [Request], plan: &StepPlan, logits: &[Vec<f32>]) {
    let mut sampling = vec![false; running.len()];
    for (s, row) in plan.scheduled.iter().zip(logits) {
        sampling[s.index] = !row.is_empty();
    }
    let constrained =
        running.iter().zip(&sampling).filter(|(r, &sampled)| sampled && r.processor.needs_mask()).count();
    let prepare = |(request, &sampled): (&mut Request, &bool)| {
        if sampled && !request.is_done() {
            request.processor.prepare_mask();
        }
    };
    match constrained {
        0 => {}
        1 => running.iter_mut().zip(&sampling).for_each(prepare),
        _ => running.par_iter_mut().zip(&sampling).for_each(prepare),
    }
}
