"""Services: Get-Service, Start-Service, Stop-Service and ServiceController.Start(),
with their dependents, their pending states and the programs they run."""

from __future__ import annotations

from typing import Any

from lab.powershell.errors import CmdletError, MethodError
from lab.powershell.session import Session
from lab.powershell.syntax import Command

# Windows PowerShell 5.1 serialises ServiceControllerStatus as its number.
SERVICE_STATUS_NUMBER = {"Stopped": 1, "StartPending": 2, "StopPending": 3, "Running": 4}
# ... and ServiceStartMode (StartType) too.
START_TYPE_NUMBER = {"Automatic": 2, "Manual": 3, "Disabled": 4}

# System.ServiceProcess.ServiceController.Stop() waits this long for each running
# dependent service it stops first (dotnet/runtime ServiceController.cs, and .NET
# Framework's referencesource: `currentDependent.WaitForStatus(ServiceControllerStatus
# .Stopped, new TimeSpan(0, 0, 30))`), whatever -NoWait says about the service itself.
DEPENDENT_WAIT_SECONDS = 30.0
# What WaitForStatus throws when the time is up (System.ServiceProcess.TimeoutException,
# SR.Timeout): a .NET exception Stop-Service does not catch, so the statement fails.
SERVICE_TIMEOUT = "Time out has expired and the operation has not been completed."
# A service that never finishes stopping (`stuck`) is StopPending until then.
NEVER_STOPS = 4102444800.0


class ServiceCmdlets(Session):
    """The services cmdlets, on the host document's `services`."""

    # Services: a host document's `services` maps each service's key name to its
    # status; `service_info` (optional) gives a key name its DisplayName, the key names
    # of its DependentServices, its StartType, `stop_seconds` (how long it takes to stop
    # once asked: StopPending until then; 0 by default) and `stuck` (a service that
    # never leaves StopPending once asked to stop), `start_seconds` (how long it takes
    # to start: StartPending until then; 0 by default) and `start_stuck` (one that never
    # leaves StartPending). `stopping` and `starting` ({key: when}) hold the services
    # on their way to Stopped and Running.
    def _service(self, cmdlet: str, name: str) -> str:
        services = self.host.setdefault("services", {})
        for actual in services:
            if actual.lower() == name.lower():
                return str(actual)
        for actual in services:
            if str(self._info(actual).get("DisplayName", "")).lower() == name.lower():
                return str(actual)
        raise CmdletError(cmdlet, f"Cannot find any service with service name '{name}'.")

    def _settle_stops(self) -> None:
        starting: dict[str, float] = self.host.get("starting") or {}
        for key, until in list(starting.items()):
            if float(until) <= self.world.now() + self.waited:
                del starting[key]
                if self.host["services"].get(key) == "StartPending":
                    self.host["services"][key] = "Running"
                    self._service_process(key, running=True)
        stopping: dict[str, float] = self.host.get("stopping") or {}
        for key, until in list(stopping.items()):
            if float(until) <= self.world.now() + self.waited:
                del stopping[key]
                if self.host["services"].get(key) == "StopPending":
                    self.host["services"][key] = "Stopped"
                    self._service_process(key, running=False)

    def _info(self, key: str) -> dict[str, Any]:
        info: dict[str, Any] = (self.host.get("service_info") or {}).get(key) or {}
        return info

    def _service_object(self, key: str) -> dict[str, Any]:
        status = self.host["services"][key]
        info = self._info(key)
        return {
            "Name": key,
            "DisplayName": info.get("DisplayName", key),
            "Status": SERVICE_STATUS_NUMBER.get(status, status),
            "StartType": START_TYPE_NUMBER[info.get("StartType", "Automatic")],
        }

    def _dependents(self, key: str) -> list[str]:
        return [
            self._service("Get-Service", d) for d in self._info(key).get("DependentServices", [])
        ]

    def _get_service(self, commands: tuple[Command, ...]) -> str:
        """Get-Service -Name takes a key name or a display name (without regard to case)
        and answers with the key name in Name: PowerShell's ServiceBaseCommand
        (Service.cs) turns a name without wildcards into `new ServiceController(name)`,
        which .NET resolves by service name or display name. Start-Service and
        Stop-Service -Name go the same way. -DependentServices answers with the services
        that depend on it instead."""
        args = commands[0].args
        if args.get("ErrorAction") == "SilentlyContinue":
            # A name the host has no service by is a non-terminating error (Microsoft
            # Learn, Get-Service: "Cannot find any service with service name"),
            # silenced: the others are answered, and `$?` is false
            # (about_Automatic_Variables, $?).
            keys = []
            for n in args["Name"]:
                try:
                    keys.append(self._service("Get-Service", n))
                except CmdletError:
                    self.ok = False
            return self._select(commands, [self._service_object(k) for k in keys])
        keys = [self._service("Get-Service", n) for n in args["Name"]]
        if args.get("DependentServices"):
            keys = [d for k in keys for d in self._dependents(k)]
        return self._select(commands, [self._service_object(k) for k in keys])

    def _start_service(self, commands: tuple[Command, ...]) -> str:
        """Start-Service as PowerShell's StartServiceCommand does it (PowerShell/PowerShell,
        commands/management/Service.cs, DoStartService): ServiceController.Start(), then
        DoWaitForStatus(Running, StartPending), which calls WaitForStatus with a 2 s
        timeout in a loop for as long as the service stays StartPending, warning
        "Waiting for service ... to start..." each time: no bound. The script spends
        that time on the host (`start_seconds`; for ever for `start_stuck`)."""
        actual = self._service("Start-Service", commands[0].args["Name"])
        self._start(actual)
        until = (self.host.get("starting") or {}).get(actual)
        if until is not None:
            self.waited += max(float(until) - (self.world.now() + self.waited), 0.0)
            self._settle_stops()
        return ""

    def _service_start(self, commands: tuple[Command, ...]) -> str:
        """`(Get-Service -Name 'X').Start()`: ServiceController.Start(), which returns
        once the service control manager has the service StartPending, without waiting
        for it to run (.NET ServiceController.Start: StartService). A service that is
        not Stopped refuses (StartService's ERROR_SERVICE_ALREADY_RUNNING, and a
        StopPending one ERROR_SERVICE_CANNOT_ACCEPT_CTRL), as a disabled one does
        (ERROR_SERVICE_DISABLED): .NET throws InvalidOperationException "Cannot start
        service X on computer '.'.", which PowerShell reports as a method exception."""
        key = self._service("Get-Service", commands[0].args["Name"])
        if self.host["services"][key] != "Stopped" or self._info(key).get("StartType") == (
            "Disabled"
        ):
            raise MethodError(
                'Exception calling "Start" with "0" argument(s): '
                f"\"Cannot start service {key} on computer '.'.\""
            )
        self._start(key)
        return ""

    def _start(self, key: str) -> None:
        if self.host["services"][key] in ("Running", "StartPending"):
            return
        if self._info(key).get("StartType") == "Disabled":
            # A disabled service does not start, whoever asks (Microsoft Learn,
            # Start-Service, example "Start a disabled service"; the service controller's
            # ERROR_SERVICE_DISABLED): Set-Service -StartupType first.
            name = self._info(key).get("DisplayName", key)
            raise CmdletError(
                "Start-Service",
                f"Service '{name} ({key})' cannot be started due to the following error: "
                f"Cannot start service {key} on computer '.'.",
            )
        # The service controller starts what a service depends on first.
        for other in list(self.host["services"]):
            if key in self._dependents(other) and self.host["services"][other] != "Running":
                self._start(other)
        info = self._info(key)
        seconds = NEVER_STOPS if info.get("start_stuck") else float(info.get("start_seconds", 0))
        if seconds <= 0:
            self.host["services"][key] = "Running"
            self._service_process(key, running=True)
            return
        self.host["services"][key] = "StartPending"
        starting = self.host.setdefault("starting", {})
        starting[key] = min(NEVER_STOPS, self.world.now() + self.waited + seconds)

    def _stop_service(self, commands: tuple[Command, ...]) -> str:
        """Stop-Service as PowerShell's StopServiceCommand does it (PowerShell/PowerShell,
        commands/management/Service.cs, DoStopService): without -Force, a service whose
        DependentServices are not all Stopped is refused ("ServiceHasDependentServices");
        otherwise it calls ServiceController.Stop(), which first stops every dependent
        that is not Stopped and *waits* up to 30 s for each (DEPENDENT_WAIT_SECONDS),
        throwing when one takes longer; then it sends the service the stop control and,
        with -NoWait, returns without waiting for the service itself."""
        args = commands[0].args
        key = self._service("Stop-Service", args["Name"])
        if not args.get("Force"):
            running = [d for d in self._dependents(key) if self.host["services"][d] != "Stopped"]
            if running:
                raise CmdletError(
                    "Stop-Service",
                    f"Cannot stop service '{self._display(key)} ({key})' because it has "
                    "dependent services. It can only be stopped if the Force flag is set.",
                )
        self._stop(key, key)
        return ""

    def _display(self, key: str) -> str:
        return str(self._info(key).get("DisplayName", key))

    def _stop(self, key: str, asked: str) -> None:
        """ServiceController.Stop() on `key` (recursively for its dependents)."""
        for dep in self._dependents(key):
            if self.host["services"][dep] == "Stopped":
                continue
            self._stop(dep, asked)
            self._wait_stopped(dep)
        status = self.host["services"][key]
        if status == "Stopped":
            return  # ERROR_SERVICE_NOT_ACTIVE: Stop-Service ignores it
        if status == "StopPending":
            # ControlService refuses a second stop (ERROR_SERVICE_CANNOT_ACCEPT_CTRL):
            # ServiceController.Stop throws InvalidOperationException, which
            # Stop-Service reports as CouldNotStopService.
            raise CmdletError(
                "Stop-Service",
                f"Service '{self._display(asked)} ({asked})' cannot be stopped due to the "
                f"following error: Cannot stop {key} service on computer '.'.",
            )
        info = self._info(key)
        seconds = NEVER_STOPS if info.get("stuck") else float(info.get("stop_seconds", 0))
        if seconds <= 0:
            self.host["services"][key] = "Stopped"
            self._service_process(key, running=False)
            return
        self.host["services"][key] = "StopPending"
        stopping = self.host.setdefault("stopping", {})
        stopping[key] = min(NEVER_STOPS, self.world.now() + self.waited + seconds)

    def _wait_stopped(self, key: str) -> None:
        """ServiceController.WaitForStatus(Stopped, 30 s) on a dependent: the script
        spends the time on the host; past 30 s it throws."""
        until = (self.host.get("stopping") or {}).get(key)
        if until is None:
            return
        left = float(until) - (self.world.now() + self.waited)
        if left > DEPENDENT_WAIT_SECONDS:
            self.waited += DEPENDENT_WAIT_SECONDS
            raise CmdletError("Stop-Service", SERVICE_TIMEOUT)
        self.waited += max(left, 0.0)
        self._settle_stops()

    def _service_process(self, service: str, running: bool) -> None:
        """A service that runs a program (AllSync's scheduler): the process follows it."""
        process = (self.host.get("service_processes") or {}).get(service)
        if process is None:
            return
        procs: list[str] = self.host.setdefault("processes", [])
        present = any(p.lower() == process.lower() for p in procs)
        if running and not present:
            procs.append(process)
        elif not running and present:
            self.host["processes"] = [p for p in procs if p.lower() != process.lower()]
