<div class="acp-page-container">
	<!-- IMPORT admin/partials/settings/header.tpl -->

	<div class="row m-0">
		<div id="spy-container" class="col-12 col-md-8 px-0 mb-4" tabindex="0">
			<form role="form" class="tessera-settings">
				<div class="mb-4">
					<h5 class="fw-bold tracking-tight settings-header">Tessera</h5>
					<p>
						Register this forum in Tessera with this back-channel logout URL:
						<br /><code>{backchannelUrl}</code>
					</p>

					<div class="mb-3">
						<label class="form-label" for="issuer">Issuer URL</label>
						<input type="text" id="issuer" name="issuer" class="form-control" placeholder="https://auth.example.com" />
						<p class="form-text">Tessera's public base URL (its <code>TESSERA_ISSUER</code>). Logout tokens must carry exactly this <code>iss</code>.</p>
					</div>
					<div class="mb-3">
						<label class="form-label" for="clientId">Client id</label>
						<input type="text" id="clientId" name="clientId" class="form-control" />
						<p class="form-text">The <code>client_id</code> Tessera gave this forum. Logout tokens must be addressed to it (<code>aud</code>).</p>
					</div>
					<div class="mb-3">
						<label class="form-label" for="clientSecret">Client secret</label>
						<input type="password" id="clientSecret" name="clientSecret" class="form-control" autocomplete="new-password" />
						<p class="form-text">The <code>client_secret</code> Tessera showed when the forum was registered. Needed to end the Tessera session when a user logs out of the forum and to report forum activity; receiving logouts works without it.</p>
					</div>
					<div class="mb-3">
						<label class="form-label" for="forumLogout">A logout at the forum ends</label>
						<select id="forumLogout" name="forumLogout" class="form-select">
							<option value="everywhere">the Tessera session everywhere (the site and every other app sign out too)</option>
							<option value="forum">only the forum's part (the other apps stay signed in)</option>
						</select>
					</div>
					<div class="mb-3">
						<label class="form-label" for="activityMinutes">Report forum activity to Tessera every (minutes)</label>
						<input type="number" min="0" max="1440" id="activityMinutes" name="activityMinutes" class="form-control" placeholder="5" />
						<p class="form-text">At most this often per session, in the background, so that someone who only uses the forum is not signed out at Tessera's idle timeout. 0 turns it off (then the idle timeout counts only use of the other apps).</p>
					</div>
					<div class="mb-3">
						<label class="form-label" for="jwksUri">Key set URL (optional)</label>
						<input type="text" id="jwksUri" name="jwksUri" class="form-control" placeholder="&lt;issuer&gt;/.well-known/jwks.json" />
					</div>
					<div class="mb-3">
						<label class="form-label" for="sessionSharingName">Session-sharing base name (optional)</label>
						<input type="text" id="sessionSharingName" name="sessionSharingName" class="form-control" placeholder="read from nodebb-plugin-session-sharing (default appId)" />
						<p class="form-text">Only if nodebb-plugin-session-sharing is active: the "Base Name" whose <code>&lt;name&gt;:uid</code> mapping turns a Tessera user id into a NodeBB uid.</p>
					</div>
					<div class="mb-3">
						<label class="form-label" for="oauth2Strategy">OAuth2 strategy name (optional)</label>
						<input type="text" id="oauth2Strategy" name="oauth2Strategy" class="form-control" placeholder="tessera" />
						<p class="form-text">Only if users sign in with nodebb-plugin-sso-oauth2-multiple through Tessera's OpenID Connect provider: the name of that strategy, whose <code>&lt;name&gt;Id:uid</code> mapping turns a Tessera user id into a NodeBB uid (its "User ID property" must be <code>sub</code>).</p>
					</div>
					<div class="mb-3">
						<label class="form-label" for="revocationMemoryDays">Remember ended sessions for (days)</label>
						<input type="number" min="1" max="400" id="revocationMemoryDays" name="revocationMemoryDays" class="form-control" placeholder="30" />
						<p class="form-text">At least as long as a shared cookie can live (Tessera's session lifetime). Shared cookies of ended Tessera sessions are refused for this long.</p>
					</div>
				</div>
			</form>
		</div>

		<!-- IMPORT admin/partials/settings/toc.tpl -->
	</div>
</div>
