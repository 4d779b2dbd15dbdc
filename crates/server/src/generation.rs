//! Runs the choices of one request on the engine: submission, the merged event stream, and
//! collection into finished choices for non-streaming answers.

use futures_util::stream::{self, BoxStream, StreamExt};
use hearth_engine::{EngineEvent, EngineRequest, FinishReason, Finished, RequestStream, Sampled, TokenConstraint};
use hearth_protocol::Usage;

use crate::access_log::RequestLog;
use crate::error::ApiError;
use crate::params::GenerationPlan;
use crate::state::{AdmissionGuard, ServedModel};

/// An engine event of one choice.
pub struct ChoiceEvent {
    pub index: u32,
    pub event: EngineEvent,
}

/// The submitted choices of a request: prompts.len() * n engine requests.
pub struct Submitted {
    streams: Vec<RequestStream>,
    pub n: usize,
    guard: AdmissionGuard,
}

/// Submits every (prompt, choice) pair; choice index = prompt index * n + choice. The
/// constraints go to the choices in that order (none when the list is shorter).
pub fn submit(
    model: &ServedModel,
    prompts: Vec<Vec<u32>>,
    plan: &GenerationPlan,
    guard: AdmissionGuard,
    prompt_param: &str,
    constraints: Vec<Option<TokenConstraint>>,
) -> Result<Submitted, ApiError> {
    let mut streams = Vec::with_capacity(prompts.len() * plan.n);
    let mut constraints = constraints.into_iter();
    for prompt in prompts {
        for choice in 0..plan.n {
            let request = EngineRequest {
                prompt: prompt.clone(),
                sampling: plan.sampling_for(choice),
                stop: plan.stop.clone(),
                constraint: constraints.next().flatten(),
                no_speculation: plan.no_speculation,
            };
            let stream = model.engine.submit(request).map_err(|e| ApiError::from_generate(e, prompt_param))?;
            streams.push(stream);
        }
    }
    Ok(Submitted { streams, n: plan.n, guard })
}

impl Submitted {
    pub fn num_choices(&self) -> usize {
        self.streams.len()
    }

    /// All choices' events as they come; the admission slots are held until it is dropped.
    pub fn events(self) -> BoxStream<'static, ChoiceEvent> {
        let guard = self.guard;
        let per_choice = self.streams.into_iter().enumerate().map(|(index, s)| {
            stream::unfold(s, |mut s| async move { s.next().await.map(|e| (e, s)) })
                .map(move |event| ChoiceEvent { index: index as u32, event })
                .boxed()
        });
        stream::select_all(per_choice)
            .map(move |event| {
                let _held_until_the_stream_is_dropped = &guard;
                event
            })
            .boxed()
    }
}

/// The outcome of one choice.
#[derive(Debug, Default)]
pub struct ChoiceResult {
    pub text: String,
    pub tokens: Vec<Sampled>,
    pub finish: Option<Finished>,
}

impl ChoiceResult {
    pub fn finish_reason(&self) -> Option<&'static str> {
        self.finish.as_ref().map(|f| f.reason.as_str())
    }
}

/// A request the engine cancelled (the server is stopping): an error, not a short answer,
/// so that clients and gateways retry it elsewhere.
pub fn cancelled() -> ApiError {
    ApiError::unavailable("The request was cancelled because the server is shutting down.", 5)
}

/// Runs every choice to its end; returns the choices and the request's usage (also logged).
pub async fn collect(submitted: Submitted, log: &RequestLog) -> Result<(Vec<ChoiceResult>, Usage), ApiError> {
    let n = submitted.n;
    let results = run_to_end(submitted).await?;
    let usage = usage(&results.iter().map(|r| r.finish.as_ref()).collect::<Vec<_>>(), n);
    log.record_usage(&usage);
    Ok((results, usage))
}

async fn run_to_end(submitted: Submitted) -> Result<Vec<ChoiceResult>, ApiError> {
    let mut results: Vec<ChoiceResult> = (0..submitted.num_choices()).map(|_| ChoiceResult::default()).collect();
    let mut events = submitted.events();
    while let Some(ChoiceEvent { index, event }) = events.next().await {
        let result = &mut results[index as usize];
        match event {
            EngineEvent::Token(t) => {
                result.text.push_str(&t.text);
                result.tokens.push(t.sampled);
            }
            EngineEvent::Finished(f) if f.reason == FinishReason::Abort => return Err(cancelled()),
            EngineEvent::Finished(f) => result.finish = Some(f),
            EngineEvent::Error(message) => return Err(ApiError::internal(message)),
        }
    }
    Ok(results)
}

/// Usage of a request: each prompt counted once, completions summed over choices.
pub fn usage(finished: &[Option<&Finished>], n: usize) -> Usage {
    let (mut prompt, mut completion, mut cached) = (0, 0, 0);
    for (i, f) in finished.iter().enumerate() {
        let Some(f) = f else { continue };
        completion += f.completion_tokens as u64;
        if i % n == 0 {
            prompt += f.prompt_tokens as u64;
            cached += f.cached_tokens as u64;
        }
    }
    Usage::new(prompt, completion, cached)
}
