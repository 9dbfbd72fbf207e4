"""How a script fails: a statement outside the subset (none of the script runs), or a
cmdlet that fails as the real one does (a terminating error under 'Stop')."""

from __future__ import annotations

from lab.powershell.syntax import Statement

UNSUPPORTED = "amsm-lab: unsupported PowerShell: "


def not_recognized(name: str) -> str:
    """about_Command_Precedence: a name that is no command is a CommandNotFoundException,
    which ends the script under 'Stop'."""
    return (
        f"The term '{name}' is not recognized as the name of a cmdlet, function, "
        "script file, or operable program. Check the spelling of the name, or if a "
        "path was included, verify that the path is correct and try again."
    )


class Unsupported(Exception):
    """The script leaves the subset; none of it runs."""

    def __init__(self, statement: str, why: str) -> None:
        self.statement = statement
        self.why = why
        super().__init__(f"{UNSUPPORTED}{statement}")

    def stderr(self) -> str:
        return f"{UNSUPPORTED}{self.statement}\namsm-lab: ({self.why})\n"


class CmdletError(Exception):
    """A statement failed the way the real cmdlet fails (a terminating error)."""

    def __init__(self, cmdlet: str, message: str) -> None:
        self.cmdlet = cmdlet
        self.message = message
        super().__init__(f"{cmdlet} : {message}")

    def display(self, statement: Statement) -> str:
        """The error as Windows PowerShell 5.1's console shows it: the message, where it
        happened, the statement underlined (the lab's statements start a line)."""
        first = statement.text.split("|", 1)[0].rstrip()
        return (
            f"{self}\nAt line:{statement.line} char:1\n+ {statement.text}\n+ {'~' * len(first)}\n"
        )


class MethodError(CmdletError):
    """A .NET method called from a statement threw: PowerShell shows the
    MethodInvocationException's message alone, without a cmdlet name."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)
        self.args = (message,)

    def __str__(self) -> str:
        return self.message


def not_found(cmdlet: str, path: str) -> CmdletError:
    return CmdletError(cmdlet, f"Cannot find path '{path}' because it does not exist.")
