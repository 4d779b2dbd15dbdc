//! hearth driven by a real OpenAI client (the async-openai crate): model list, chat and
//! completions, streaming and not, parsed into the SDK's own types.

use async_openai::config::OpenAIConfig;
use async_openai::types::{
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions,
    CreateChatCompletionRequestArgs, CreateCompletionRequestArgs, FinishReason, Stop,
};
use async_openai::Client;
use futures_util::StreamExt;
use crate::support::*;

fn sdk(server: &TestServer, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(OpenAIConfig::new().with_api_base(server.url("/v1")).with_api_key(key))
}

fn messages(text: &str) -> Vec<async_openai::types::ChatCompletionRequestMessage> {
    vec![
        ChatCompletionRequestSystemMessageArgs::default().content("You are a helpful assistant.").build().unwrap().into(),
        ChatCompletionRequestUserMessageArgs::default().content(text).build().unwrap().into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_lists_models_and_chats() {
    let server = start().await;
    let client = sdk(&server, "unused");
    let models = client.models().list().await.expect("models list");
    assert_eq!(models.data.len(), 1);
    assert_eq!(models.data[0].id, MODEL_NAME);
    let model = client.models().retrieve("smollm-alias").await.expect("alias resolves");
    assert_eq!(model.id, "smollm-alias");

    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL_NAME)
        .messages(messages("Count from 1 to 5."))
        .temperature(0.0)
        .max_completion_tokens(24u32)
        .build()
        .unwrap();
    let response = client.chat().create(request).await.expect("chat completion");
    assert!(response.id.starts_with("chatcmpl-"));
    assert_eq!(response.object, "chat.completion");
    assert_eq!(response.model, MODEL_NAME);
    let choice = &response.choices[0];
    assert_eq!(choice.message.role, async_openai::types::Role::Assistant);
    let content = choice.message.content.clone().unwrap();
    assert!(content.contains('1') && content.contains('2'), "{content:?}");
    let usage = response.usage.expect("usage");
    assert_eq!(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    assert!(usage.completion_tokens <= 24 && usage.prompt_tokens > 10);
    match choice.finish_reason {
        Some(FinishReason::Length) => assert_eq!(usage.completion_tokens, 24),
        Some(FinishReason::Stop) => assert!(usage.completion_tokens < 24),
        other => panic!("unexpected finish reason {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_streams_chat_with_usage() {
    let server = start().await;
    let client = sdk(&server, "unused");
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL_NAME)
        .messages(messages("Count from 1 to 5."))
        .temperature(0.0)
        .max_tokens(20u32)
        .stream(true)
        .stream_options(ChatCompletionStreamOptions { include_usage: true })
        .build()
        .unwrap();
    let mut stream = client.chat().create_stream(request).await.expect("stream starts");
    let (mut ids, mut text, mut finish, mut usage, mut first_role) = (Vec::new(), String::new(), None, None, None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk parses");
        ids.push(chunk.id.clone());
        if let Some(u) = chunk.usage {
            assert!(chunk.choices.is_empty(), "the usage chunk has no choices");
            usage = Some(u);
        }
        for choice in chunk.choices {
            if first_role.is_none() {
                first_role = Some(choice.delta.role);
            }
            text.push_str(&choice.delta.content.unwrap_or_default());
            finish = finish.or(choice.finish_reason);
        }
    }
    assert_eq!(first_role, Some(Some(async_openai::types::Role::Assistant)), "the first delta carries the role");
    ids.dedup();
    assert_eq!(ids.len(), 1, "one id for all chunks");
    assert!(finish.is_some());
    let usage = usage.expect("usage chunk with include_usage");
    assert_eq!(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    assert!(text.contains('1'), "{text:?}");

    // The same request without streaming gives the same text (greedy).
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL_NAME)
        .messages(messages("Count from 1 to 5."))
        .temperature(0.0)
        .max_tokens(20u32)
        .build()
        .unwrap();
    let response = client.chat().create(request).await.unwrap();
    assert_eq!(response.choices[0].message.content.as_deref(), Some(text.as_str()));
    assert_eq!(response.usage.unwrap().completion_tokens, usage.completion_tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_completions_streaming_and_not() {
    let server = start().await;
    let client = sdk(&server, "unused");
    let request = CreateCompletionRequestArgs::default()
        .model(MODEL_NAME)
        .prompt("The capital of France is")
        .max_tokens(8u32)
        .temperature(0.0)
        .stop(Stop::StringArray(vec!["\n\n".into()]))
        .build()
        .unwrap();
    let response = client.completions().create(request.clone()).await.expect("completion");
    assert_eq!(response.object, "text_completion");
    let text = response.choices[0].text.clone();
    assert!(text.contains("Paris"), "{text:?}");
    let usage = response.usage.unwrap();
    assert_eq!(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

    let mut streamed = String::new();
    let mut stream = client.completions().create_stream(request).await.expect("stream");
    while let Some(chunk) = stream.next().await {
        for choice in chunk.expect("chunk parses").choices {
            streamed.push_str(&choice.text);
        }
    }
    assert_eq!(streamed, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_sends_the_api_key() {
    let mut config = server_config();
    config.api_key = Some("sk-test-123".into());
    let server = start_with(config, engine_config()).await;
    let wrong = sdk(&server, "sk-wrong").models().list().await;
    assert!(wrong.is_err(), "a wrong key is refused");
    let right = sdk(&server, "sk-test-123").models().list().await.expect("the right key works");
    assert_eq!(right.data[0].id, MODEL_NAME);
}

/// A forced call and a JSON Schema answer, built and read with the SDK's own types (SmolLM's
/// template has no call tags, so calls come as bare JSON, held to the schema by the grammar).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_reads_tool_calls_and_json_schema_answers() {
    use async_openai::types::{
        ChatCompletionNamedToolChoice, ChatCompletionTool, ChatCompletionToolChoiceOption, ChatCompletionToolType,
        FunctionName, FunctionObject, ResponseFormat, ResponseFormatJsonSchema,
    };
    let server = start().await;
    let client = sdk(&server, "unused");
    let parameters = serde_json::json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string", "maxLength": 24}}});
    let function = FunctionObject {
        name: "get_weather".into(),
        description: Some("Get the weather in a city".into()),
        parameters: Some(parameters),
        strict: Some(true),
    };
    let tool = ChatCompletionTool { r#type: ChatCompletionToolType::Function, function };
    let choice = ChatCompletionToolChoiceOption::Named(ChatCompletionNamedToolChoice {
        r#type: ChatCompletionToolType::Function,
        function: FunctionName { name: "get_weather".into() },
    });
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL_NAME)
        .messages(messages("What is the weather in Paris?"))
        .tools(vec![tool])
        .tool_choice(choice)
        .temperature(0.0)
        .max_completion_tokens(100u32)
        .build()
        .unwrap();
    let response = client.chat().create(request.clone()).await.expect("chat completion with tools");
    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls.clone().expect("tool_calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function.name, "get_weather");
    let arguments: serde_json::Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert!(arguments["city"].is_string(), "{arguments}");

    let mut stream = client.chat().create_stream(request).await.expect("stream");
    let (mut name, mut streamed_arguments) = (String::new(), String::new());
    while let Some(chunk) = stream.next().await {
        for call in chunk.expect("chunk").choices.into_iter().flat_map(|c| c.delta.tool_calls.unwrap_or_default()) {
            let Some(function) = call.function else { continue };
            name.push_str(&function.name.unwrap_or_default());
            streamed_arguments.push_str(&function.arguments.unwrap_or_default());
        }
    }
    assert_eq!((name.as_str(), streamed_arguments.as_str()), ("get_weather", calls[0].function.arguments.as_str()));

    let schema = serde_json::json!({"type": "object", "additionalProperties": false, "required": ["answer", "confidence"],
        "properties": {"answer": {"type": "string", "maxLength": 60}, "confidence": {"type": "integer", "minimum": 0, "maximum": 10}}});
    let format = ResponseFormat::JsonSchema {
        json_schema: ResponseFormatJsonSchema { description: None, name: "reply".into(), schema: Some(schema), strict: Some(true) },
    };
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL_NAME)
        .messages(messages("Is the sky blue?"))
        .response_format(format)
        .temperature(0.0)
        .max_completion_tokens(80u32)
        .build()
        .unwrap();
    let response = client.chat().create(request).await.expect("json_schema answer");
    let text = response.choices[0].message.content.clone().unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(value["answer"].is_string() && value["confidence"].is_u64(), "{value}");
}
