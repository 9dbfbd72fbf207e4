"""The PowerShell subset a simulated Windows host understands, and how powershell.exe
writes its answer.

The lab accepts exactly the statements that `activities.drivers.powershell` builds
and refuses everything else *before running any of it* (parser.py has the grammar);
a statement that runs does what the real cmdlet does on the host's document, each
behaviour with its source named beside its code.

The rooms, from the bottom up:
- `syntax` (the parsed statement), `errors` (Unsupported, CmdletError), `output` (what
  powershell.exe writes to pipes: ScriptResult, CLIXML, ConvertTo-Json);
- `lexer` (tokens), `session` (the host's shell while a script runs, and the World it
  sees);
- the cmdlets per device family: `services`, `processes`, `registry` (and the WSMan:
  drive), `files` (C: and V:), `iscsi` (the module and iscsicli.exe), `writefilter`
  (UWF), `wmi` (CIM/WMI: the OS, its time zone), `machine` (restart, reachability);
- `parser` (the grammar: which cmdlets, parameters and pipelines), and `interpreter`
  (run_script: a statement at a time, each command to its family's cmdlet).

Other modules import the names below from `lab.powershell`.
"""

from lab.powershell.errors import UNSUPPORTED, CmdletError, Unsupported
from lab.powershell.files import visible_volume
from lab.powershell.interpreter import Interpreter, run_script
from lab.powershell.iscsi import iscsi_doc, new_session, offers, portal_side
from lab.powershell.lexer import tokenize
from lab.powershell.output import OEM_CODEPAGE, ScriptResult
from lab.powershell.parser import parse_script
from lab.powershell.registry import WSMAN_NOT_RUNNING
from lab.powershell.services import SERVICE_TIMEOUT
from lab.powershell.session import World, is_up
from lab.powershell.writefilter import WRITE_FILTER_TOOLS

__all__ = [
    "OEM_CODEPAGE",
    "SERVICE_TIMEOUT",
    "UNSUPPORTED",
    "WRITE_FILTER_TOOLS",
    "WSMAN_NOT_RUNNING",
    "CmdletError",
    "Interpreter",
    "ScriptResult",
    "Unsupported",
    "World",
    "iscsi_doc",
    "is_up",
    "new_session",
    "offers",
    "parse_script",
    "portal_side",
    "run_script",
    "tokenize",
    "visible_volume",
]
