"""The official `openai` Python package against hearth's /v1/responses: create, stream, a
forced function call (streamed and not), a function_call_output follow-up sent as items and
again through previous_response_id, retrieve and delete.
Usage: openai_responses.py BASE_URL MODEL; prints "ok" when every assertion holds."""

import sys

import openai

base_url, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused")

plain = client.responses.create(model=model, input="Say hello in one short sentence.", temperature=0, max_output_tokens=48)
assert plain.object == "response" and plain.status == "completed", plain
assert plain.output_text, plain
assert plain.usage.input_tokens > 0 and plain.usage.output_tokens > 0, plain.usage
assert plain.usage.total_tokens == plain.usage.input_tokens + plain.usage.output_tokens

stream = client.responses.create(model=model, input="Say hello in one short sentence.", temperature=0, max_output_tokens=48, stream=True)
events = list(stream)
kinds = [event.type for event in events]
assert kinds[:2] == ["response.created", "response.in_progress"], kinds
assert kinds[-1] == "response.completed", kinds
assert [event.sequence_number for event in events] == list(range(len(events)))
streamed_text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
assert streamed_text == plain.output_text, (streamed_text, plain.output_text)
assert events[-1].response.usage.output_tokens == plain.usage.output_tokens

with client.responses.stream(model=model, input="Say hello in one short sentence.", temperature=0, max_output_tokens=48) as managed:
    final = managed.get_final_response()
assert final.output_text == plain.output_text, final

tools = [{"type": "function", "name": "get_weather", "description": "Get the weather in a city", "strict": True,
          "parameters": {"type": "object", "required": ["city"], "additionalProperties": False,
                         "properties": {"city": {"type": "string", "maxLength": 24}}}},
         {"type": "web_search"}]
question = "What is the weather in Paris?"
called = client.responses.create(model=model, input=question, tools=tools, tool_choice="required", temperature=0, max_output_tokens=60)
call = next(item for item in called.output if item.type == "function_call")
assert call.name == "get_weather" and call.call_id.startswith("call_"), call
assert "city" in __import__("json").loads(call.arguments), call.arguments

streamed = list(client.responses.create(model=model, input=question, tools=tools, tool_choice="required", temperature=0,
                                        max_output_tokens=60, stream=True))
done = [event for event in streamed if event.type == "response.function_call_arguments.done"]
assert len(done) == 1 and done[0].arguments == call.arguments, done

result = {"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees, sunny"}
replayed = client.responses.create(model=model, temperature=0, max_output_tokens=24, tools=tools, tool_choice="none",
                                   input=[{"role": "user", "content": question}, call.model_dump(exclude_none=True), result])
assert replayed.output_text, replayed
continued = client.responses.create(model=model, temperature=0, max_output_tokens=24, tools=tools, tool_choice="none",
                                    previous_response_id=called.id, input=[result])
assert continued.previous_response_id == called.id
assert continued.output_text == replayed.output_text, (continued.output_text, replayed.output_text)
assert continued.usage.input_tokens == replayed.usage.input_tokens, (continued.usage, replayed.usage)

fetched = client.responses.retrieve(called.id)
assert fetched.id == called.id and fetched.output[0].call_id == call.call_id, fetched
client.responses.delete(called.id)
try:
    client.responses.retrieve(called.id)
    raise AssertionError("a deleted response is still there")
except openai.NotFoundError:
    pass
print("ok")
