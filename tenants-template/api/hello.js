// A dynamic route: runs in this tenant's own worker process, at /api/hello.
module.exports = function hello(req, res) {
  res.json({ hello: req.query.name || 'world', tenant: process.env.TENANTRY_TENANT });
};
