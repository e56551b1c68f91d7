"""Counting the aten operations of a torch.profiler trace, shared by
`torch_profile.py` (the reference benchmark's iteration) and `regularizers.py --ops`
(the method rows)."""

# Calls that allocate or describe memory without computing anything: no kernel on a GPU.
NO_WORK = {
    "aten::" + name
    for name in "empty empty_strided empty_like new_empty new_empty_strided as_strided as_strided_ "
    "view _reshape_alias _unsafe_view reshape resize_ detach alias lift_fresh resolve_conj "
    "resolve_neg t transpose permute expand unsqueeze squeeze select slice".split()
}


def does_work(event):
    """The innermost calls that compute something: what a GPU would run as kernels. A
    composite call (aten::linear calling aten::addmm) counts through its parts; one that
    only allocates beside its work (aten::mkldnn_convolution calling aten::empty) counts
    itself. Judged call by call: aten::copy_ is work in one place, composite in another."""
    if event.name in NO_WORK:
        return False
    return not any(c.name.startswith("aten::") and does_work(c) for c in event.cpu_children)


def counts(prof, iterations):
    """Aten calls per iteration, and how many of them do work (`does_work`)."""
    calls = [e for e in prof.events() if e.name.startswith("aten::")]
    return len(calls) / iterations, sum(map(does_work, calls)) / iterations


def aten_events(prof):
    """The profile's aten operations, averaged by name."""
    return [e for e in prof.key_averages() if e.key.startswith("aten::")]
