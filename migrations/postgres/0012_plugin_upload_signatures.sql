-- The detached signature an upload carried (the JSON `gateway plugin sign` writes), checked
-- against PLUGIN_TRUSTED_KEYS whenever an instance loads the upload.
ALTER TABLE plugin_uploads ADD COLUMN signature TEXT;
