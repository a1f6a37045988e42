"""The SCALOR model and guide as Pyro programs: sites, objectives, gradients, particles, priors."""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Predictive, Trace_ELBO, TraceMeanField_ELBO
from pyro.poutine.util import site_is_subsample

from pyro_scalor.api import Scalor
from pyro_scalor.model import sites
from pyro_scalor.model.config import get_model_config
from pyro_scalor.model.slots import Slots
from pyro_scalor.train.diagnostics import loss_terms
from pyro_scalor.train.objectives import make_objective
from tests.conftest import make_video  # (B, T, 3, 64, 64) by default

B, T = 2, 3


@pytest.fixture(autouse=True)
def _seeded_and_validating():
    """A fixed seed and Pyro validation on (threads, param store, restore: tests/conftest.py)."""
    pyro.set_rng_seed(0)
    pyro.enable_validation(True)


def scalor_for(**overrides) -> Scalor:
    return Scalor(get_model_config("tiny", **overrides), seed=0)


def latent_nodes(trace) -> dict:
    return {
        name: site
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site) and not site["is_observed"]
    }


def expected_shape(name: str, cfg, lead=()) -> tuple:
    """The documented value shape of a site (see pyro_scalor.model.sites)."""
    k, hw = cfg.max_objects, cfg.num_cells
    role = name.rsplit("_", 1)[0]
    table = {
        "prop_pres": (B, k),
        "prop_where": (B, k, 4),
        "prop_what": (B, k, cfg.z_what_dim),
        "prop_depth": (B, k, 1),
        "disc_pres": (B, hw),
        "disc_where": (B, hw, 4),
        "disc_what": (B, hw, cfg.z_what_dim),
        "disc_depth": (B, hw, 1),
        "bg": (B, 1, cfg.z_bg_dim),
        "obs": (B, 1, cfg.channels, cfg.image_size, cfg.image_size),
    }
    return tuple(lead) + table[role]


def full_shape(fn) -> tuple:
    return tuple(fn.batch_shape + fn.event_shape)


# ------------------------------------------------------------------------------------------
# 1. model / guide site alignment
VARIANTS = [
    # rejection and duplicate suppression (of proposals and of tracks) are switched together
    dict(
        presence=p,
        rejection=r,
        suppression=r,
        track_suppression_threshold=0.05 if r else 0.0,
        attention=a,
        transition_prior=tp,
        background_prior=bp,
    )
    for p, r, a, (tp, bp) in itertools.product(
        ("relaxed", "hard"),
        (True, False),
        (True, False),
        (
            ("learned", "learned"),
            ("fixed", "fixed"),
            ("learned", "fixed"),
            ("fixed", "learned"),
            ("velocity", "learned"),
        ),
    )
] + [
    # the earlier propagation, merge and rejection that the measured presets keep
    dict(
        presence=p,
        rejection=True,
        attention=True,
        transition_prior="learned",
        background_prior="learned",
        propagation="compound",
        merge="topk",
        rejection_rule="box",
    )
    for p in ("relaxed", "hard")
]


def _variant_id(v: dict) -> str:
    return "-".join(
        [
            v["presence"],
            "rej" if v["rejection"] else "norej",
            "att" if v["attention"] else "noatt",
            v["transition_prior"][:3] + "/" + v["background_prior"][:3],
        ]
        + ([v["propagation"], v["merge"], v["rejection_rule"]] if "propagation" in v else [])
    )


@pytest.mark.parametrize("variant", VARIANTS, ids=[_variant_id(v) for v in VARIANTS])
def test_model_and_guide_sites_align(variant):
    s = scalor_for(**variant)
    cfg = s.config
    video = make_video()
    g_tr = poutine.trace(s.guide).get_trace(video)
    m_tr = poutine.trace(poutine.replay(s.model, trace=g_tr)).get_trace(video)
    m_tr.compute_log_prob()
    g_tr.compute_log_prob()

    expected = sites.latent_sites(T)
    g_latent, m_latent = latent_nodes(g_tr), latent_nodes(m_tr)
    # same names, in the same order (TraceMeanField_ELBO relies on the order too)
    assert list(g_latent) == expected
    assert list(m_latent) == expected
    observed = [n for n, st in m_tr.nodes.items() if st["type"] == "sample" and st["is_observed"]]
    assert observed == [sites.obs(t) for t in range(T)]
    assert not any(n.startswith("obs_") for n in g_tr.nodes)

    for name in expected:
        g, m = g_latent[name], m_latent[name]
        shape = expected_shape(name, cfg)
        assert tuple(g["value"].shape) == shape, name
        assert full_shape(g["fn"]) == shape, f"guide {name}: {full_shape(g['fn'])} != {shape}"
        assert full_shape(m["fn"]) == shape, f"model {name}: {full_shape(m['fn'])} != {shape}"
        assert g["fn"].event_dim == m["fn"].event_dim, name
        assert m["log_prob"].shape == m["fn"].batch_shape, name
        assert torch.isfinite(m["log_prob"]).all() and torch.isfinite(g["log_prob"]).all(), name
        if name.startswith(("prop_pres", "disc_pres")) and cfg.presence == "hard":
            assert set(g["value"].unique().tolist()) <= {0.0, 1.0}, name
    for t in range(T):
        obs = m_tr.nodes[sites.obs(t)]
        assert full_shape(obs["fn"]) == expected_shape("obs", cfg)

    # model and guide reach the same slots (rejection and suppression agree exactly)
    rec_g, rec_m = [], []
    g_tr = poutine.trace(s.guide).get_trace(video, record=rec_g)
    poutine.replay(s.model, trace=g_tr)(video, record=rec_m)
    assert len(rec_g) == len(rec_m) == T
    for t in range(T):
        assert torch.equal(rec_g[t].presence, rec_m[t].presence), t
        assert torch.equal(rec_g[t].ids, rec_m[t].ids), t

    # the swappable priors really are the ones asked for
    for t in range(1, T):
        for role in ("where", "what", "depth"):
            prior = m_latent[sites.prop(role, t)]["fn"].base_dist
            is_standard = bool((prior.loc == 0).all() and (prior.scale == 1).all())
            if cfg.transition_prior == "fixed":
                assert is_standard, (role, t)
        if cfg.transition_prior == "learned":
            # at initialisation what's prior mean is the slot's previous what (not all zero)
            assert (m_latent[sites.prop("what", t)]["fn"].base_dist.loc != 0).any()
        bg_prior = m_latent[sites.bg(t)]["fn"].base_dist
        bg_standard = bool((bg_prior.loc == 0).all() and (bg_prior.scale == 1).all())
        assert bg_standard == (cfg.background_prior == "fixed"), t


@pytest.mark.parametrize("presence", ["relaxed", "hard"])
def test_prior_samples_have_the_guide_site_shapes(presence):
    s = scalor_for(presence=presence)
    g_tr = poutine.trace(s.guide).get_trace(make_video())
    p_tr = poutine.trace(s.model).get_trace(batch_size=B, num_frames=T)
    g_latent, p_latent = latent_nodes(g_tr), latent_nodes(p_tr)
    # without a video the frames are sampled, not observed: frame t's latents, then obs_t
    expected = []
    for t in range(T):
        expected += [n for n in sites.latent_sites(T) if n.endswith(f"_{t}")] + [sites.obs(t)]
    assert list(p_latent) == expected
    for name in sites.latent_sites(T):
        assert p_latent[name]["value"].shape == g_latent[name]["value"].shape, name


# ------------------------------------------------------------------------------------------
# 2. finite losses and gradients
@pytest.mark.parametrize("objective", ["elbo", "elbo-relaxed"])
def test_objectives_give_finite_losses(objective):
    s = scalor_for()
    video = make_video()
    elbo = make_objective(objective)
    mask = torch.tensor([[True, False, True], [True, True, False]])
    for kw in ({}, {"temperature": 0.5, "disc_pres_prior": 1e-4, "discovery_mask": mask}):
        loss = elbo.loss(s.model, s.guide, video, **kw)
        assert isinstance(loss, float) and math.isfinite(loss), kw
    diff = elbo.differentiable_loss(s.model, s.guide, video)
    assert diff.requires_grad and torch.isfinite(diff)


@pytest.mark.parametrize("objective", ["elbo", "elbo-relaxed"])
def test_unweighted_kls_give_finite_losses(objective):
    s = scalor_for(weight_kl_by_presence=False)
    g_tr = poutine.trace(s.guide).get_trace(make_video())
    assert all(site["scale"] == 1.0 for site in latent_nodes(g_tr).values())
    assert math.isfinite(make_objective(objective).loss(s.model, s.guide, make_video()))


def test_hard_presence_trains_with_the_score_function_objective():
    s = scalor_for(presence="hard")
    loss = make_objective("elbo-relaxed").differentiable_loss(s.model, s.guide, make_video())
    assert torch.isfinite(loss)
    loss.backward()
    head = s.nets.discovery_head.net[-1].weight.grad
    assert head is not None and head[0].abs().sum() > 0  # presence channel gets a gradient


def test_hard_presence_with_the_mean_field_objective_is_refused_or_valid(tmp_path):
    from pyro_scalor.train.config import RUN_PRESETS
    from pyro_scalor.train.trainer import Trainer

    s = scalor_for(presence="hard")
    cfg = RUN_PRESETS["smoke"].train.replace(objective="elbo")
    dataset = [{"video": v} for v in make_video(4, T)]
    try:
        trainer = Trainer(s, cfg, tmp_path, dataset=dataset, progress=False, tensorboard=False)
    except ValueError as err:  # the preferred fix: refuse the combination with a clear message
        assert "hard" in str(err) and "elbo" in str(err)
        return
    video = trainer.batch(0)
    # otherwise the objective must handle non-reparameterised presence (valid under validation)
    trainer.objective.loss_and_grads(s.model, s.guide, video, **trainer.step_kwargs(0, video))


def test_every_parameter_gets_a_gradient():
    s = scalor_for()
    loss = TraceMeanField_ELBO(max_plate_nesting=2).differentiable_loss(
        s.model, s.guide, make_video()
    )
    loss.backward()
    missing = [n for n, p in s.nets.named_parameters() if p.grad is None]
    zero = [n for n, p in s.nets.named_parameters() if p.grad is not None and not p.grad.any()]
    assert not missing, f"parameters without a gradient: {missing}"
    assert not zero, f"parameters with an all-zero gradient: {zero}"
    trans = s.nets.prior_tracker.trans
    assert not trans.weight.any(), "the prior tracker's transition layer starts at zero"
    assert trans.weight.grad.abs().sum() > 0
    non_finite = [n for n, p in s.nets.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not non_finite


@pytest.mark.parametrize("size", [8, 16])
def test_coarse_background_paints_full_frames_and_trains(size):
    s = scalor_for(background_size=size)
    bg = s.nets.bg_decoder(torch.randn(5, s.config.z_bg_dim))
    assert bg.shape == (5, 3, 64, 64) and ((bg > 0) & (bg < 1)).all()
    # it stops upsampling by convolution early (the rest is bilinear)
    full = scalor_for().nets.bg_decoder
    assert len(s.nets.bg_decoder.conv) < len(full.conv)
    loss = TraceMeanField_ELBO(max_plate_nesting=2).differentiable_loss(
        s.model, s.guide, make_video()
    )
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.any() for p in s.nets.bg_decoder.parameters())


@pytest.mark.parametrize("size", [2, 12, 128])
def test_bad_background_sizes_are_refused(size):
    with pytest.raises(ValueError, match="background_size"):
        get_model_config("tiny", background_size=size)


def test_loss_terms_add_up_to_the_objective():
    s = scalor_for()
    video = make_video()
    pyro.set_rng_seed(3)
    loss = TraceMeanField_ELBO(max_plate_nesting=2).loss(s.model, s.guide, video)
    pyro.set_rng_seed(3)
    terms = loss_terms(s.model, s.guide, video)
    kls = [k for k in terms if k.startswith("kl_")]
    assert {"kl_prop_pres", "kl_disc_pres", "kl_bg", "kl_disc_what"} <= set(kls)
    assert terms["loss"] == pytest.approx(loss / B, rel=1e-5)
    assert terms["loss"] == pytest.approx(terms["nll"] + sum(terms[k] for k in kls), rel=1e-9)
    assert all(terms[k] >= -1e-3 for k in kls), "analytic KLs are non-negative"


# ------------------------------------------------------------------------------------------
# 6. particles
@pytest.mark.parametrize("elbo_cls", [Trace_ELBO, TraceMeanField_ELBO])
def test_vectorised_particles_give_a_finite_loss(elbo_cls):
    s = scalor_for()
    elbo = elbo_cls(num_particles=3, vectorize_particles=True, max_plate_nesting=2)
    loss = elbo.differentiable_loss(s.model, s.guide, make_video())
    assert torch.isfinite(loss)
    loss.backward()
    assert s.nets.glimpse_decoder.fc[0].weight.grad.abs().sum() > 0


def test_particle_plate_gives_every_site_a_leading_particle_dim():
    s = scalor_for()
    video = make_video()
    with pyro.plate("particles", 3, dim=-3):
        g_tr = poutine.trace(s.guide).get_trace(video)
        m_tr = poutine.trace(poutine.replay(s.model, trace=g_tr)).get_trace(video)
    for name, site in latent_nodes(g_tr).items():
        assert tuple(site["value"].shape) == expected_shape(name, s.config, lead=(3,)), name
    for t in range(T):
        obs_fn = m_tr.nodes[sites.obs(t)]["fn"]
        assert full_shape(obs_fn) == expected_shape("obs", s.config, lead=(3,))
    # the particles are different samples
    v = g_tr.nodes[sites.disc("where", 0)]["value"]
    assert not torch.equal(v[0], v[1])


def test_particles_do_not_mix():
    """Each particle of a vectorised run scores exactly like a run with that particle alone."""
    s = scalor_for()
    video = make_video()
    with pyro.plate("particles", 3, dim=-3):
        g_tr = poutine.trace(s.guide).get_trace(video)
        m_tr = poutine.trace(poutine.replay(s.model, trace=g_tr)).get_trace(video)
    g_tr.compute_log_prob()
    m_tr.compute_log_prob()
    names = sites.latent_sites(T)
    for i in range(3):
        data = {n: g_tr.nodes[n]["value"][i] for n in names}
        g1 = poutine.trace(poutine.condition(s.guide, data=data)).get_trace(video)
        m1 = poutine.trace(poutine.condition(s.model, data=data)).get_trace(video)
        g1.compute_log_prob()
        m1.compute_log_prob()
        for n in names:
            torch.testing.assert_close(
                g_tr.nodes[n]["log_prob"][i], g1.nodes[n]["log_prob"], atol=1e-3, rtol=1e-4
            )
            torch.testing.assert_close(
                m_tr.nodes[n]["log_prob"][i], m1.nodes[n]["log_prob"], atol=1e-3, rtol=1e-4
            )
            sv, s1 = m_tr.nodes[n]["scale"], m1.nodes[n]["scale"]
            if torch.is_tensor(sv):
                torch.testing.assert_close(sv[i], s1, atol=1e-5, rtol=1e-4)
        for t in range(T):
            n = sites.obs(t)
            torch.testing.assert_close(
                m_tr.nodes[n]["log_prob"][i], m1.nodes[n]["log_prob"], atol=0.5, rtol=1e-5
            )


# ------------------------------------------------------------------------------------------
# 10. prior sampling and Predictive
@pytest.mark.parametrize("presence", ["relaxed", "hard"])
def test_model_samples_frames_without_observations(presence):
    s = scalor_for(presence=presence)
    for rho in (0.1, 0.9):
        frames = s.model(batch_size=2, num_frames=3, disc_pres_prior=rho)
        assert frames.shape == (2, 3, 3, 64, 64)
        assert torch.isfinite(frames).all()
        assert frames.min() >= 0 and frames.max() <= 1
    # different draws give different videos
    assert not torch.equal(s.model(batch_size=2, num_frames=3), s.model(batch_size=2, num_frames=3))


@pytest.mark.parametrize("num_samples, parallel", [(1, False), (2, True)])
def test_predictive_with_the_guide(num_samples, parallel):
    s = scalor_for()
    video = make_video()
    predictive = Predictive(s.model, guide=s.guide, num_samples=num_samples, parallel=parallel)
    samples = predictive(video)
    lead = (num_samples,)
    for name in sites.latent_sites(T):
        assert tuple(samples[name].shape) == expected_shape(name, s.config, lead=lead), name
    for t in range(T):
        assert tuple(samples[sites.obs(t)].shape) == expected_shape("obs", s.config, lead=lead)
    assert all(torch.isfinite(v).all() for v in samples.values())


def test_single_frame_videos_work():
    s = scalor_for()
    video = make_video(t=1)
    g_tr = poutine.trace(s.guide).get_trace(video)
    assert (
        list(latent_nodes(g_tr))
        == sites.latent_sites(1)
        == [
            "disc_pres_0",
            "disc_where_0",
            "disc_what_0",
            "disc_depth_0",
            "bg_0",
        ]
    )
    assert math.isfinite(make_objective("elbo").loss(s.model, s.guide, video))


# ------------------------------------------------------------------------------------------
# 12. argument errors (video validation itself is in tests/test_api.py)
def test_missing_arguments_raise_helpful_errors():
    s = scalor_for()
    with pytest.raises(ValueError, match="batch_size and num_frames"):
        s.model(num_frames=3)
    with pytest.raises(ValueError, match="needs a video"):
        s.guide(batch_size=2, num_frames=3)
    with pytest.raises(ValueError, match="discovery_mask"):
        s.guide(make_video(), discovery_mask=torch.ones(3, T, dtype=torch.bool))


@pytest.mark.parametrize("program", ["model", "guide"])
def test_discovery_mask_with_the_wrong_number_of_frames_is_refused(program):
    s = scalor_for()
    with pytest.raises(ValueError, match="discovery_mask"):
        getattr(s, program)(make_video(), discovery_mask=torch.ones(B, T - 1, dtype=torch.bool))


# ------------------------------------------------------------------------------------------
# 13. the discovery head's view of the unexplained frame (ModelConfig.discovery_residual)
@pytest.mark.parametrize("num_particles", [1, 3])
def test_discovery_residual_feeds_the_mask_and_the_unexplained_frame(num_particles):
    s = scalor_for(discovery_residual=True)
    cfg = s.config
    assert s.nets.mask_encoder.net[0][0].in_channels == 1 + cfg.channels
    assert scalor_for().nets.mask_encoder.net[0][0].in_channels == 1
    video = make_video()
    inputs = []
    hook = s.nets.mask_encoder.register_forward_hook(lambda m, i, o: inputs.append(i[0]))
    try:
        guide = s.guide
        if num_particles > 1:
            guide = pyro.plate("particles", num_particles, dim=-3)(guide)
        g_tr = poutine.trace(guide).get_trace(video)
    finally:
        hook.remove()
    assert len(inputs) == T
    for t, inp in enumerate(inputs):
        n = B if t == 0 else num_particles * B  # at t = 0 no particle has propagated objects
        assert inp.shape == (n, 1 + cfg.channels, 64, 64)
        mask, rest = inp[:, :1], inp[:, 1:]
        assert ((mask >= 0) & (mask <= 1)).all()
        frame = video[:, t].repeat(n // B, 1, 1, 1)
        assert torch.allclose(rest, frame * (1 - mask))
        if t == 0:  # nothing is propagated yet: the head sees the whole frame
            assert torch.equal(mask, torch.zeros_like(mask))
    # the sites and their shapes do not change
    lead = (num_particles,) if num_particles > 1 else ()
    g_latent = latent_nodes(g_tr)
    assert list(g_latent) == sites.latent_sites(T)
    for name, site in g_latent.items():
        assert tuple(site["value"].shape) == expected_shape(name, cfg, lead=lead), name
    assert math.isfinite(make_objective("elbo").loss(s.model, s.guide, video))


# ------------------------------------------------------------------------------------------
# propagation: a confident tracker keeps its object


def _presence_of_first_objects(program, presence: str, video=None, **kw) -> list[float]:
    """Mean presence per frame of the objects present at t = 0, discovery off after t = 0."""
    t = 8
    mask = torch.zeros(B, t, dtype=torch.bool)
    mask[:, 0] = True
    frames = []
    program(video, batch_size=B, num_frames=t, discovery_mask=mask, record=frames, **kw)
    first = frames[0].presence > 0.5
    ids0 = torch.where(first, frames[0].ids, torch.full_like(frames[0].ids, -1))
    out = []
    for f in frames:
        same = (f.ids.unsqueeze(-1) == ids0.unsqueeze(-2)).any(-1)  # (B, K) slots of t=0 objects
        out.append(float((f.presence * same).sum() / first.sum()))
    return out


@pytest.mark.parametrize("presence", ["relaxed", "hard"])
@pytest.mark.parametrize("program", ["model", "guide"])
def test_a_confident_tracker_keeps_its_object_over_8_frames(presence, program):
    # untrained tiny model, presence biases set confident: the guide's bounded logit starts at
    # 8.8 * tanh(20 / 8.8) = 8.6 (the official code's starts near 8.5)
    s = scalor_for(presence=presence, prop_presence_bias=20.0, disc_presence_bias=8.0)
    video = make_video(t=8)
    kw = dict(temperature=1.0, disc_pres_prior=0.999)
    if program == "model":
        pres = _presence_of_first_objects(s.model, presence, **kw)
    else:
        pres = _presence_of_first_objects(s.guide, presence, video, **kw)
    assert pres[0] == pytest.approx(1.0, abs=1e-3)
    assert min(pres) > 0.95, pres
    # the earlier compound rule fades the same tracker (relaxed presence)
    if presence == "relaxed" and program == "model":
        old = scalor_for(presence=presence, prop_presence_bias=2.0, propagation="compound")
        new = scalor_for(presence=presence, prop_presence_bias=2.0)
        faded = _presence_of_first_objects(old.model, presence, **kw)[-1]
        kept = _presence_of_first_objects(new.model, presence, **kw)[-1]
        assert faded < kept


# ------------------------------------------------------------------------------------------
# track admission: a discovery becomes a tracker only above a presence


def test_track_admission_gates_only_fresh_discoveries_below_it():
    s = scalor_for(track_admission=0.7)
    prev = Slots.empty((1,), 4, s.config.z_what_dim, s.config.hidden_dim)
    prev.pres = torch.tensor([[0.9, 0.5, 0.5, 0.7]])
    prev.discovered = torch.tensor([[True, True, False, True]])
    # discovered at 0.9: tracked; at 0.5 and exactly 0.7: refused; propagated at 0.5: kept
    assert torch.equal(s.model._gate(prev), torch.tensor([[0.9, 0.0, 0.5, 0.0]]))
    assert torch.equal(s.guide._gate(prev), torch.tensor([[0.9, 0.0, 0.5, 0.0]]))
    assert torch.equal(scalor_for().model._gate(prev), prev.pres)  # 0: every discovery
    with pytest.raises(ValueError, match="track_admission"):
        get_model_config("tiny", track_admission=1.0)


@pytest.mark.parametrize("program", ["model", "guide"])
def test_refused_discoveries_are_drawn_but_not_tracked(program):
    # discovery presence near 0.5 (bias 0) and an admission above every relaxed sample: the
    # t = 0 objects are drawn at t = 0 and gone from t = 1 on; with admission 0 they stay
    kw = dict(temperature=1.0, disc_pres_prior=0.999)
    video = make_video(t=8)
    for admission, stays in ((0.0, True), (0.9999999, False)):
        s = scalor_for(prop_presence_bias=20.0, disc_presence_bias=0.0,
                       track_admission=admission)  # fmt: skip
        if program == "model":
            pres = _presence_of_first_objects(s.model, "relaxed", **kw)
        else:
            pres = _presence_of_first_objects(s.guide, "relaxed", video, **kw)
        assert pres[0] > 0.5
        assert (min(pres[1:]) > 0.5) is stays, (admission, pres)
