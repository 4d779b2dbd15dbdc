"""The official `anthropic` Python package against hearth's /v1/messages: create, stream,
a forced tool_use (streamed and not), a tool_result follow-up, and count_tokens.
Usage: anthropic_sdk.py BASE_URL MODEL; prints "ok" when every assertion holds."""

import sys

import anthropic

base_url, model = sys.argv[1], sys.argv[2]
client = anthropic.Anthropic(base_url=base_url, api_key="unused")
question = [{"role": "user", "content": "Count from 1 to 5."}]

message = client.messages.create(model=model, max_tokens=24, extra_body={"temperature": 0}, messages=question)
assert message.type == "message" and message.role == "assistant", message
assert message.content[0].type == "text" and message.content[0].text, message
assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0, message.usage
assert message.stop_reason in ("end_turn", "max_tokens"), message.stop_reason

with client.messages.stream(model=model, max_tokens=24, extra_body={"temperature": 0}, messages=question) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text == message.content[0].text, (text, message.content[0].text)
assert final.stop_reason == message.stop_reason and final.usage.output_tokens == message.usage.output_tokens

counted = client.messages.count_tokens(model=model, messages=question)
assert counted.input_tokens == message.usage.input_tokens, (counted, message.usage)

tools = [{"name": "get_weather", "description": "Get the weather in a city",
          "input_schema": {"type": "object", "required": ["city"], "additionalProperties": False,
                           "properties": {"city": {"type": "string", "maxLength": 24}}}}]
weather = [{"role": "user", "content": "What is the weather in Paris?"}]
forced = {"type": "tool", "name": "get_weather"}
called = client.messages.create(model=model, max_tokens=80, extra_body={"temperature": 0}, tools=tools, tool_choice=forced, messages=weather)
assert called.stop_reason == "tool_use", called
use = next(block for block in called.content if block.type == "tool_use")
assert use.name == "get_weather" and isinstance(use.input, dict) and "city" in use.input, use

with client.messages.stream(model=model, max_tokens=80, extra_body={"temperature": 0}, tools=tools, tool_choice=forced, messages=weather) as stream:
    streamed = stream.get_final_message()
streamed_use = next(block for block in streamed.content if block.type == "tool_use")
assert streamed_use.input == use.input and streamed.stop_reason == "tool_use", streamed

follow_up = weather + [
    {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "22 degrees, sunny"}]},
]
answer = client.messages.create(model=model, max_tokens=24, extra_body={"temperature": 0}, tools=tools, messages=follow_up)
assert answer.content, answer
print("ok")
