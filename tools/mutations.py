"""The defences of docs/security.md, each with a mutation that removes it and the tests that must
then fail. `make mutate` (tools/mutate.py) applies them one at a time to a copy of the checkout:
a mutation that leaves its tests passing is a defence no test can see, and fails the gate.

A mutation replaces ``find`` (which must occur exactly once in ``path``, or in what follows its
``after`` anchor, so the table cannot silently stop applying) with ``replace``. Tests are pytest node ids; the fewer, the faster.
"""

from __future__ import annotations

from dataclasses import dataclass

SECCOMP = "sandbox_image/sandbox_runner/seccomp.py"
RUNNER = "sandbox_image/sandbox_runner/runner.py"
FOR_REAL = "tests/sandbox/test_seccomp_for_real.py"
LAMBDA_PROBE = "tests/lambda_mode/test_lambda_mode.py::test_every_call_the_notes_say_is_refused_is_refused_in_lambda_mode"
UNIT_SECCOMP = "tests/unit/test_seccomp.py::test_calls_no_cell_needs_are_refused"
ISOLATION = "tests/sandbox/test_tenant_isolation.py"
QUOTAS_E2E = "tests/e2e/test_quotas_and_fairness.py"


@dataclass(frozen=True)
class Mutation:
    name: str  # the defence removed
    path: str
    find: str
    replace: str
    tests: tuple[str, ...]
    section: str  # where docs/security.md describes the defence
    after: str = ""  # look for ``find`` only after this text (which must be there)


def _denied(call: str, section: str = "§3", *tests: str) -> Mutation:
    """Delete one call from the filter's deny list (its name in ``DENIED``)."""
    return Mutation(f"seccomp: {call} allowed", SECCOMP, f'"{call}",', "", (FOR_REAL, UNIT_SECCOMP, *tests), section,
                    after="\nDENIED = {")


MUTATIONS: tuple[Mutation, ...] = (
    # -- §3 the seccomp filter -------------------------------------------------------------------
    _denied("ptrace"),
    _denied("process_vm_readv"),
    _denied("process_vm_writev"),
    _denied("kcmp"),
    _denied("pidfd_getfd"),
    _denied("shmget"),
    _denied("msgget"),
    _denied("semget"),
    _denied("mq_open"),
    _denied("add_key"),
    _denied("keyctl"),
    _denied("perf_event_open"),
    _denied("bpf"),
    _denied("userfaultfd"),
    _denied("open_by_handle_at"),
    _denied("personality"),
    _denied("pidfd_open"),
    _denied("unshare"),
    _denied("chroot"),
    _denied("mount"),
    _denied("ioprio_set"),
    _denied("io_uring_setup"),
    Mutation("seccomp: clone3 allowed", SECCOMP, ', "clone3")', ")", (FOR_REAL, UNIT_SECCOMP), "§3",
             after="\nDENIED = {"),
    _denied("setsid", "§3, §6c"),
    Mutation("seccomp: the deny list not installed in Lambda mode either", SECCOMP,
             "    for number, names in DENIED.items():", "    for number, names in {}.items():",
             (LAMBDA_PROBE,), "§3, §4b"),
    Mutation("seccomp: sockets of every family", SECCOMP, "AF_UNIX = 1", "AF_UNIX = 2",
             ("tests/sandbox/test_tenant_isolation.py::test_seccomp_allows_only_unix_sockets_and_the_native_abi",
              "tests/lambda_mode/test_lambda_mode.py::test_user_code_cannot_reach_the_runtime_api"), "§3, §4b"),
    Mutation("seccomp: clone with namespace flags", SECCOMP, "CLONE_NAMESPACES = 0x00020000 |",
             "CLONE_NAMESPACES = 0 and 0x00020000 |", (FOR_REAL,), "§3"),
    Mutation("seccomp: x32 calls reach the kernel", SECCOMP, "    prog.ret(_errno(errno.ENOSYS))  # x32",
             "    prog.ret(SECCOMP_RET_ALLOW)  # x32",
             ("tests/unit/test_seccomp.py::test_foreign_abis_are_refused",
              "tests/sandbox/test_tenant_isolation.py::test_seccomp_allows_only_unix_sockets_and_the_native_abi"),
             "§3"),
    Mutation("seccomp: signals to processes that outlive the execution", SECCOMP,
             '    "kill": (0,), ', "",
             (f"{ISOLATION}::test_signals_limits_priority_and_affinity_of_other_processes_are_refused",), "§3"),
    Mutation("seccomp: rlimits of processes that outlive the execution", SECCOMP, '    "prlimit64": (0,), ',
             "    ", (f"{ISOLATION}::test_signals_limits_priority_and_affinity_of_other_processes_are_refused",), "§3"),
    # -- §4 the runner -----------------------------------------------------------------------------
    Mutation("runner: dumpable (its memory readable from a cell)", RUNNER,
             "self.non_dumpable = proc.make_non_dumpable()", "self.non_dumpable = True",
             (f"{ISOLATION}::test_processes_that_outlive_the_execution_cannot_be_traced_or_written",), "§4"),
    Mutation("runner: no kill sweep of what a cell leaves running", RUNNER,
             "        clean = proc.sweep(self.uid, keep=keep)", "        clean = True",
             ("tests/sandbox/test_attacks.py::test_background_daemon_is_killed",), "§4"),
    Mutation("runner: no wipe of the scratch directories", RUNNER,
             "                scrub.empty_except(directory, keep |", "                (lambda *_: None)(directory, keep |",
             (f"{ISOLATION}::test_left_behind_directories_of_any_shape_are_wiped",), "§4"),
    Mutation("runner: a tampered zygote is kept", RUNNER,
             "        return proc.healthy(proc.vitals(self._zygote.pid), self._zygote_vitals)", "        return True",
             (f"{ISOLATION}::test_a_tampered_zygote_is_replaced_before_the_next_caller",), "§4"),
    # -- §4b data by reference ---------------------------------------------------------------------
    Mutation("exchange: any ref a response names is taken", "layers/agentsapi/sandbox/exchange.py",
             'FILE_REF = re.compile(r"out/[0-9]{1,3}")', 'FILE_REF = re.compile(r".+")',
             ("tests/sandbox/test_exchange.py::test_the_host_side_refuses_refs_the_runner_never_makes",), "§4b"),
    Mutation("exchange: blob keys taken from the sandbox's response", "layers/agentsapi/sandbox/port.py",
             "    for produced in result.files:\n        produced.key = None", "    for produced in result.files:\n        pass",
             ("tests/unit/test_sandbox_protocol.py::test_a_response_never_names_blob_keys_the_api_side_would_adopt",),
             "§4b"),
    Mutation("files: a stored file's key adopted as a code output", "layers/agentsapi/domain/files.py",
             "        if not key.startswith(SANDBOX_PREFIX):", "        if False:",
             ("tests/integration/test_quotas.py::test_adopting_an_output_takes_only_keys_in_transit_never_a_stored_file",),
             "§4b"),
    Mutation("exchange: inputs of any size", "layers/agentsapi/sandbox/exchange.py",
             "    if total > max_input_bytes:", "    if False:",
             ("tests/sandbox/test_exchange.py::test_the_inputs_of_one_execution_are_bounded",), "§4b"),
    # -- §6 the API --------------------------------------------------------------------------------
    Mutation("sessions: any state of the workspace loads", "layers/agentsapi/blobs.py",
             'return bool(entry_id) and "/" not in str(entry_id) and ref == session_key(ws, conversation_id, str(entry_id))',
             'return ref.startswith(f"sessions/{ws}/")',
             ("tests/integration/test_internal_fields.py::test_a_stored_ref_to_the_same_workspaces_other_conversation_or_entry_is_never_loaded",
              "tests/unit/test_models.py::test_an_entry_owns_exactly_one_session_key"), "§6"),
    Mutation("sessions: any state of the conversation loads", "layers/agentsapi/blobs.py",
             'return bool(entry_id) and "/" not in str(entry_id) and ref == session_key(ws, conversation_id, str(entry_id))',
             'return ref.startswith(session_prefix(ws, conversation_id))',
             ("tests/integration/test_internal_fields.py::test_a_stored_ref_to_the_same_workspaces_other_conversation_or_entry_is_never_loaded",),
             "§6"),
    Mutation("batch: a retried request runs the model and the code again", "layers/agentsapi/domain/batch.py",
             "        stored = self._stored_response(ws, conversation_id)\n        if stored is not None:\n"
             "            return stored\n", "",
             ("tests/integration/test_batch.py::test_a_crash_after_storing_reuses_the_conversation",), "§6"),
    Mutation("json: no nesting bound", "layers/agentsapi/http/edge.py", "    deep = too_deep(data, max_depth)",
             "    deep = None", ("tests/integration/test_input_bounds.py",), "§6"),
    # -- §6c quotas and fairness -------------------------------------------------------------------
    Mutation("quota: charges always granted", "layers/agentsapi/quota.py",
             "        if not self.ledger.charge(ws, kind, nbytes, self.quota_bytes):",
             "        if not self.ledger.charge(ws, kind, nbytes, None):",
             ("tests/integration/test_quotas.py::test_uploads_count_until_the_quota_then_507_names_it_and_deletes_give_room_back",),
             "§6c"),
    Mutation("quota: a failed turn keeps what it stored", "layers/agentsapi/domain/conversations.py",
             "                    self._undo(ws, kept)", "                    pass",
             ("tests/integration/test_quotas.py::test_a_failed_turn_keeps_none_of_what_it_stored",), "§6c"),
    Mutation("quota: the runner hands back whatever it likes", RUNNER,
             "        max_bytes = min(max_bytes, room) if room is not None else max_bytes", "",
             ("tests/sandbox/test_exchange.py::test_the_runner_hands_back_no_more_than_the_workspace_may_store",), "§6c"),
    Mutation("disk: no reserve", "layers/agentsapi/adapters/disk_reserve.py",
             "        if free - incoming < self.reserve_bytes:", "        if False:",
             ("tests/unit/test_disk_reserve.py",), "§6c"),
    Mutation("cpu: no cgroup groups a worker's processes", "layers/agentsapi/adapters/worker_cgroup.py",
             'OPTIONAL_CONTROLLERS = ("cpu",)', "OPTIONAL_CONTROLLERS = ()",
             (f"{QUOTAS_E2E}::test_sixty_busy_processes_leave_another_tenants_cell_and_the_api_their_share[no-autogroups]",),
             "§6c"),
    Mutation("connections: the header deadline restarts with every byte", "layers/agentsapi/http/connections.py",
             "        if count and self.phase == \"request\" and self.deadline is None:",
             "        if count and self.phase == \"request\":",
             ("tests/unit/test_connections.py::test_the_header_deadline_counts_from_the_first_byte_and_bytes_do_not_reset_it",),
             "§6c"),
    Mutation("connections: no cap per client address", "layers/agentsapi/http/connections.py",
             "            if self.policy.max_per_client and", "            if False and",
             ("tests/unit/test_connections.py::test_connections_are_capped_in_all_and_per_client_address",), "§6c"),
    Mutation("local pool: one workspace may hold every worker", "layers/agentsapi/adapters/local_sandbox.py",
             "        return max(1, self.config.workers - 1)", "        return self.config.workers",
             ("tests/e2e/test_api_review_findings.py::test_one_tenant_cannot_hold_every_sandbox_worker",), "§6"),
    # -- §6b the playground ------------------------------------------------------------------------
    Mutation("cors: a wildcard allowed where any token is accepted", "local/serve.py",
             '    if cors is not None and "*" in cors.origins and keys_open:', "    if False:",
             ("tests/integration/test_cors.py",), "§6b"),
)
