fn main() {
    std::process::exit(restate_dev::main());
}
