"""The shape of the command record (`commands.record`): a `Flag`, a `Command`, the entry points and the kinds of flag.

Plain classes with `__slots__` and string constants, nothing imported: `password`, `status` and `--version` read the
record before anything else is loaded.
"""

CONSOLE = "console"
"""The console scripts (`databricks-oauth-rotator`, `databricks-oauth-install`, ...)."""
LABS = "labs"
"""`databricks labs oauth-rotator <command>` (labs.yml, `commands/labs_cli.py`)."""
SANDBOX = "sandbox"
"""`databricks labs sandbox lakebase-oauth-<command>` (contrib/sandbox/, `commands/sandbox.py`)."""
ENTRY_POINTS = (CONSOLE, LABS, SANDBOX)

STRING = "string"
BOOLEAN = "boolean"
"""A switch on the console (`--purge`), `true` or `false` for labs and the sandbox (every labs flag is a string)."""
INTEGER = "integer"
MINUTES = "minutes"
"""A number of minutes, fractions allowed."""
PORT = "port"
"""Digits only, 1-65535 (the range is checked with the config's checks)."""
KINDS = (STRING, BOOLEAN, INTEGER, MINUTES, PORT)


class Flag:
    """One flag of a command: `--name`, its kind, default and help, and the entry points that offer it."""

    __slots__ = ("default", "group", "help", "kind", "metavar", "name", "offered")

    def __init__(  # pylint: disable=too-many-arguments  # a record: every field is named where it is declared
        self,
        name: str,
        help_text: str,
        *,
        kind: str = STRING,
        default: str = "",
        metavar: str | None = None,
        offered: tuple[str, ...] = ENTRY_POINTS,
        group: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"--{name}: unknown kind {kind!r}")
        self.name = name
        """As typed after `--`, with dashes (`with-password`); the handler's parameter has `_` for `-`."""
        self.help = help_text
        self.kind = kind
        self.default = default
        """As labs.yml declares it: a string (`"false"`, `"50"`, `""` for none)."""
        self.metavar = metavar
        self.offered = offered
        """The entry points that offer this flag (a command may offer more of its flags on the console)."""
        self.group = group
        """Flags of one group exclude each other (`--instance` or `--endpoint`)."""

    @property
    def parameter(self) -> str:
        """The handler's keyword for this flag."""
        return self.name.replace("-", "_")

    @property
    def labs_description(self) -> str:
        """The flag's description in labs.yml: labs flags are strings, so a boolean says which strings it takes."""
        return f"{self.help} (true or false)" if self.kind == BOOLEAN else self.help

    def __repr__(self) -> str:
        return f"Flag({self.name!r})"


class Command:  # pylint: disable=too-many-instance-attributes  # a record: one field per fact about a command
    """One command: its name and help, its flags, where it is offered and what runs it."""

    __slots__ = (
        "console",
        "flags",
        "handler",
        "help",
        "logs_are_output",
        "name",
        "needs_login",
        "needs_workspace",
        "offered",
        "table_template",
        "tail",
    )

    def __init__(  # pylint: disable=too-many-arguments  # a record: every field is named where it is declared
        self,
        name: str,
        help_text: str,
        *,
        flags: tuple[Flag, ...] = (),
        offered: tuple[str, ...] = (LABS,),
        needs_workspace: bool = True,
        needs_login: bool = False,
        handler: str = "",
        console: tuple[str, str] | None = None,
        tail: str | None = None,
        logs_are_output: bool = False,
        table_template: str | None = None,
    ) -> None:
        if not set(offered) <= set(ENTRY_POINTS) or (CONSOLE in offered) != (console is not None):
            raise ValueError(f"{name}: offered by {offered}, console {console}: a console command names its script")
        self.name = name
        """The labs and sandbox name (`rotate`; the sandbox's is `lakebase-oauth-rotate`)."""
        self.help = help_text
        """One line: labs.yml's `description`, the console's description."""
        self.flags = flags
        self.offered = offered
        self.needs_workspace = needs_workspace
        """Whether running it imports the Databricks SDK (for labs: through blueprint's `App`). Commands that do
        not are answered with the standard library alone (`password` imports the SDK only when it must mint)."""
        self.needs_login = needs_login
        """Whether the Databricks CLI must resolve a login first (labs.yml: not `is_unauthenticated`)."""
        self.handler = handler
        """`module:function` that the labs and sandbox entry points run with the typed flags (imported on use)."""
        self.console = console
        """(script, word): the console script that offers it and its sub-command word ("" for the script's own)."""
        self.tail = tail
        """The metavar of a `-- COMMAND ARG...` tail the console sub-command takes after its flags, if any."""
        self.logs_are_output = logs_are_output
        """Whether its INFO records tell the user what happened (the others print their result)."""
        self.table_template = table_template
        """labs.yml's `table_template`: the CLI renders the command's JSON stdout with it."""

    def flags_for(self, entry_point: str) -> tuple[Flag, ...]:
        """The flags `entry_point` offers for this command."""
        return tuple(flag for flag in self.flags if entry_point in flag.offered)

    def defaults_for(self, entry_point: str) -> dict[str, str]:
        """Every flag `entry_point` offers, with its default (labs.yml's `default`)."""
        return {flag.name: flag.default for flag in self.flags_for(entry_point)}

    def __repr__(self) -> str:
        return f"Command({self.name!r})"
