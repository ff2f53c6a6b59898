"""The one exception tree of sindri-jupyter.

    SindriError                      root; every message says what to do next
    ├── ConfigError                  sindri.yaml or flags: file, line, column, key
    ├── UsageError                   misuse of a command, magic or API (exit 2)
    ├── NotFoundError                no such environment in the state store
    ├── ProviderError                a provider refused or failed (exit 1)
    │   ├── ProviderAPIError         HTTP answer: provider, status, request id
    │   │   ├── AuthError            401 / 403: credentials or scope
    │   │   │   └── MissingCredential  the variable is not set (exit 2)
    │   │   ├── CapacityError        no machines of that kind are free now
    │   │   └── RateLimitError       429 after the retry policy gave up
    │   └── OutcomeUnknownError      a create whose result we could not learn
    ├── WaitTimeout                  a phase missed its deadline
    ├── RemoteError                  the remote side: SSH or kernel
    │   ├── SSHError                 names the step: connect, auth, host key, command
    │   └── KernelError              the environment kernel did not answer
    └── StateError                   the local state store

Third-party errors (httpx, asyncssh, YAML) are translated at one boundary in the
module that calls them and chained with ``raise ... from``.
"""

from __future__ import annotations


class SindriError(Exception):
    """Root of every error this package raises on purpose.

    ``hint`` is the next step for the user; front-ends print it under the message.
    ``exit_code`` follows the CLI contract: 1 the operation failed, 2 bad input.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(SindriError):
    """A problem in sindri.yaml or in the flags that override it."""

    exit_code = 2

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class UsageError(SindriError):
    """A command, magic or function was called the wrong way."""

    exit_code = 2


class NotFoundError(SindriError):
    """No environment of that name is recorded (bad input: exit 2)."""

    exit_code = 2


class ProviderError(SindriError):
    """A provider could not do what was asked."""

    def __init__(self, message: str, *, provider: str, hint: str | None = None):
        super().__init__(f"{provider}: {message}", hint=hint)
        self.provider = provider


class ProviderAPIError(ProviderError):
    """The provider's API answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None,
        request_id: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = f"HTTP {status}" if status is not None else "no answer"
        rid = f", request id {request_id}" if request_id else ""
        super().__init__(f"{message} ({where}{rid})", provider=provider, hint=hint)
        self.status = status
        self.request_id = request_id
        self.detail = detail


class AuthError(ProviderAPIError):
    """The credential is missing, wrong, or lacks a scope."""


class MissingCredential(AuthError):
    """The credential's environment variable is not set: a config problem."""

    exit_code = 2

    def __init__(self, variable: str, *, provider: str, hint: str | None = None):
        ProviderError.__init__(self, f"{variable} is not set", provider=provider,
                               hint=hint)
        self.status, self.request_id, self.detail = None, None, None


class CapacityError(ProviderAPIError):
    """No machine of the asked kind is free; ``alternatives`` lists options."""

    def __init__(self, message: str, *, alternatives: list[str] | None = None, **kw):
        super().__init__(message, **kw)
        self.alternatives = list(alternatives or [])


class RateLimitError(ProviderAPIError):
    """The provider kept answering 429 past the retry policy's patience."""


class OutcomeUnknownError(ProviderError):
    """A create was sent but its answer was lost; the resource may exist."""


class WaitTimeout(SindriError):
    """A wait missed its deadline; ``phase`` says which one."""

    def __init__(self, message: str, *, phase: str, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.phase = phase


class RemoteError(SindriError):
    """Something on the remote machine, or the way to it, failed."""


class SSHError(RemoteError):
    """An SSH step failed; ``step`` is connect, auth, host-key or command."""

    def __init__(self, message: str, *, step: str, hint: str | None = None):
        super().__init__(f"ssh {step}: {message}", hint=hint)
        self.step = step


class KernelError(RemoteError):
    """The environment kernel is missing or did not answer."""


class StateError(SindriError):
    """The local state store could not be read or written."""
